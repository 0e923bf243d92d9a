# The IOCP engine (Windows), for the addon target IOCPNET_ENGINE_TARGET
# (CMakeLists.txt).
file(GLOB IOCPNET_IOCP_SOURCES ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
target_sources(${IOCPNET_ENGINE_TARGET} PRIVATE ${IOCPNET_IOCP_SOURCES})
target_link_libraries(${IOCPNET_ENGINE_TARGET} PRIVATE ws2_32)
