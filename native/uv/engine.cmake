# The libuv engine, for the addon target IOCPNET_ENGINE_TARGET (CMakeLists.txt).
# It links against the libuv that the running Node exports; only its header is
# needed: Node's include folder, or a system libuv.
find_path(IOCPNET_UV_INCLUDE uv.h
          HINTS ${NODE_INCLUDE_DIR} ENV NODE_INCLUDE_DIR
          PATHS /usr/include/node /usr/local/include/node /opt/homebrew/include/node /usr/include /usr/local/include
          NO_DEFAULT_PATH)
if(NOT IOCPNET_UV_INCLUDE)
  message(FATAL_ERROR "uv.h not found: install Node's headers (include/node) or libuv's development package, "
                      "or pass -DNODE_INCLUDE_DIR=<folder holding uv.h>")
endif()
file(GLOB IOCPNET_UV_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
target_sources(${IOCPNET_ENGINE_TARGET} PRIVATE ${IOCPNET_UV_SOURCES})
# After the target's own include folders: Node's include folder also holds
# node_api.h, and node-api-headers' must win.
target_include_directories(${IOCPNET_ENGINE_TARGET} SYSTEM PRIVATE ${IOCPNET_UV_INCLUDE})
