// Package badbatch holds the value types that the embedded store
// (package storage), the HTTP server (package httpapi) and the Go client
// (package httpapi/client) share: the words of docs/clients/README.md that
// mean the same thing in all three. It imports nothing but the standard
// library, so that the client, which uses it, never pulls in the storage
// engine (Pebble) that the server needs.
//
// The types are plain values: safe to copy, and safe for concurrent use
// once nobody writes them. storage and client re-export them under their
// own names as type aliases (storage.AppendResult is badbatch.AppendResult),
// so one value passes between the packages without conversion.
//
// "None" has one spelling per concept:
//   - AppendOptions.ExpectedLastOffset: nil is no condition; a pointer to -1
//     requires an empty stream;
//   - AppendOptions.IdempotencyKey: "" is no key from the caller;
//   - StreamInfo.LastTimestamp: the zero time is "no record".
//
// See docs/decisions/0016-one-go-vocabulary.md for why these types live
// here.
package badbatch
