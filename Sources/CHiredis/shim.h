#ifndef AIRLOCK_CHIREDIS_SHIM_H
#define AIRLOCK_CHIREDIS_SHIM_H
// The only door to hiredis: Swift code imports this module from exactly one file
// (Sources/AirlockRedisClient/Connection/RESPReader.swift: the reply reader; sockets and TLS are ours).
#include <hiredis/hiredis.h>
#endif
