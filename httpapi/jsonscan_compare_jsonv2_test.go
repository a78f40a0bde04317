//go:build goexperiment.jsonv2

package httpapi

import jsonv2 "encoding/json/v2"

func init() {
	libraryDecoders["encoding/json/v2"] = func(data []byte, v any) error {
		return jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true))
	}
}
