# Cross-compiles the Windows (win32-x64) addon on Linux with Debian's
# mingw-w64. The -posix compilers are used because their libstdc++ has
# std::thread (the -win32 ones do not). Used by scripts/release/build-win.js:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake ...
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(IOCPNET_MINGW_PREFIX x86_64-w64-mingw32)
find_program(CMAKE_C_COMPILER NAMES ${IOCPNET_MINGW_PREFIX}-gcc-posix ${IOCPNET_MINGW_PREFIX}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${IOCPNET_MINGW_PREFIX}-g++-posix ${IOCPNET_MINGW_PREFIX}-g++ REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${IOCPNET_MINGW_PREFIX}-windres)
find_program(IOCPNET_DLLTOOL NAMES ${IOCPNET_MINGW_PREFIX}-dlltool)

set(CMAKE_FIND_ROOT_PATH /usr/${IOCPNET_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The .node must load on a bare Windows: libgcc, libstdc++ and winpthread
# are linked in, so only node.exe and system DLLs are imported.
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static -static-libgcc -static-libstdc++ -Wl,--no-insert-timestamp")
# Winsock for the IOCP engine; listed for every target because the project's
# CMakeLists.txt is shared with MSVC builds.
set(CMAKE_CXX_STANDARD_LIBRARIES "-lws2_32 -lkernel32" CACHE STRING "Libraries linked into every C++ target" FORCE)
# Windows 7 API level: GetQueuedCompletionStatusEx, CancelIoEx,
# SetFileCompletionNotificationModes, inet_ntop.
add_compile_definitions(_WIN32_WINNT=0x0601 WIN32_LEAN_AND_MEAN NOMINMAX)
set(CMAKE_SHARED_LINKER_FLAGS_RELEASE_INIT "-s")
