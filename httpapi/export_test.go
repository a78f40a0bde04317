package httpapi

import "github.com/badbatch/badbatch/storage"

// parseAppendBody is parseScratch.parse over fresh memory.
func parseAppendBody(kind bodyKind, body []byte, recordKey string, maxRecord int) ([]storage.Record, *apiError) {
	var sc parseScratch
	return sc.parse(kind, body, recordKey, maxRecord)
}
