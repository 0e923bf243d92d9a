/**
 * What an open dashboard and a Prometheus scraper ask of a server's metrics
 * port, for `bench --metrics-port` and `--metrics-paired`: GET /stats.json
 * once a second (the dashboard page polls that often) and GET /metrics every
 * scrapeEveryMs (a Prometheus job's scrape interval: 15 s by default in the
 * bench, 1 s at the most). A port that does not answer (the server between
 * runs) is asked again at the next tick.
 */
export function pollMetrics(port: number, scrapeEveryMs = 15_000, host = '127.0.0.1'): { stop(): void; requests(): number } {
  let answered = 0;
  let stopped = false;
  const ask = async (path: string): Promise<void> => {
    try {
      const res = await fetch(`http://${host}:${port}${path}`);
      await res.text();
      if (res.ok) answered++;
    } catch {
      // Not listening yet, or already closed.
    }
  };
  const timers = [
    setInterval(() => {
      if (!stopped) void ask('/stats.json');
    }, 1000),
    setInterval(() => {
      if (!stopped) void ask('/metrics');
    }, scrapeEveryMs),
  ];
  // The first scrape at once, so that a run shorter than the interval still has one.
  void ask('/metrics');
  for (const t of timers) t.unref();
  return {
    stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
    },
    requests: () => answered,
  };
}
