// Module overview lives in docs/PROTOCOL.md; this file keeps the target non-empty while it grows.
