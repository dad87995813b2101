#ifndef AIRLOCK_CHIREDIS_SHIM_H
#define AIRLOCK_CHIREDIS_SHIM_H
// The only door to hiredis: Swift code imports this module from exactly one file
// (Sources/AirlockRedis/Connection/HiredisConnection.swift).
#include <hiredis/hiredis.h>
#endif
