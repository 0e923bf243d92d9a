// The tests' Redis: the same helper the soaks and the benchmark use.
export { RedisServer, freePort, redisServerAvailable } from '../../bench/redis-server';
