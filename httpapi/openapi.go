package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the API's OpenAPI 3 document (YAML). docs/openapi.yaml is a
// copy that a test keeps identical.
//
//go:embed openapi.yaml
var OpenAPI []byte

func handleOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", OpenAPI)
}
