package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeHiddenClusterFlags: --snapshot-entries and --cluster-listen-addr
// reach cluster.Options, and neither is listed in serve's help.
func TestServeHiddenClusterFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("0123456789abcdef0123\n"), 0o600))
	base := []string{"--node-id", "1", "--cluster-addr", "127.0.0.1:7001", "--peers", "1=127.0.0.1:7001", "--cluster-secret-file", secret}

	tests := []struct {
		name       string
		args       []string
		wantListen string
		wantKeep   uint64
	}{
		{"defaults", nil, "", cluster.DefaultSnapshotEntries},
		{"set", []string{"--snapshot-entries", "50", "--cluster-listen-addr", "127.0.0.1:9001"}, "127.0.0.1:9001", 50},
		{"zero keeps the default", []string{"--snapshot-entries", "0"}, "", cluster.DefaultSnapshotEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f serveFlags
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			f.register(fs)
			require.NoError(t, fs.Parse(append(append([]string(nil), base...), tt.args...)))
			co, err := clusterOptions(&f, storage.DefaultOptions(), slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			assert.Equal(t, tt.wantListen, co.ListenAddr)
			assert.Equal(t, "127.0.0.1:7001", co.ClusterAddr, "peers still dial --cluster-addr")
			assert.Equal(t, tt.wantKeep, co.SnapshotEntries)
		})
	}

	out, err := run(t, t.Context(), "", "serve", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "--cluster-addr")
	assert.NotContains(t, out, "--snapshot-entries")
	assert.NotContains(t, out, "--cluster-listen-addr")
}

// TestServeCORSOriginsFlag: --cors-origins is off by default and splits on
// commas, dropping blanks and a trailing slash.
func TestServeCORSOriginsFlag(t *testing.T) {
	var f serveFlags
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	f.register(fs)
	require.NoError(t, fs.Parse(nil))
	assert.Nil(t, parseOrigins(f.corsOrigins))
	require.NoError(t, fs.Parse([]string{"--cors-origins", "http://a.example:3000, https://b.example/,,*"}))
	assert.Equal(t, []string{"http://a.example:3000", "https://b.example", "*"}, parseOrigins(f.corsOrigins))
}
