package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGracefulShutdownUnderLoad appends from several writers while the
// server shuts down, then reopens the store from the same directory: every
// record answered 201 is there, at its acknowledged offset, once.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	writers, perWriter := 8, 200
	if testing.Short() {
		writers, perWriter = 4, 50
	}
	ts := startServer(t, serverConfig{})
	type ack struct {
		stream string
		offset uint64
		value  string
	}
	var (
		mu    sync.Mutex
		acked []ack
		wg    sync.WaitGroup
	)
	started := make(chan struct{}, writers)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
	defer client.CloseIdleConnections()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("load-%d", w)
			for i := 0; i < perWriter; i++ {
				value := fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)
				resp, err := client.Post(ts.URL+"/v1/streams/"+stream+"/records", "application/json",
					bytes.NewReader([]byte(`{"value":`+value+`}`)))
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					return // the server stopped accepting
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return
				}
				var res appendResult
				if json.Unmarshal(body, &res) != nil {
					t.Errorf("201 with a bad body %q", body)
					return
				}
				mu.Lock()
				acked = append(acked, ack{stream, res.FirstOffset, value})
				mu.Unlock()
			}
		}()
	}
	for w := 0; w < writers; w++ {
		<-started
	}
	// Shut down in the middle of the load: once a quarter is acknowledged.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= writers*perWriter/4
	}, time.Minute, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, ts.Server.Shutdown(ctx))
	wg.Wait()
	require.NoError(t, ts.Store.Close())
	ts.closed = true
	require.NotEmpty(t, acked)

	st := openStore(t, ts.Dir, nil, nil)
	defer st.Close()
	for _, a := range acked {
		recs, err := st.Read(context.Background(), a.stream, a.offset, 1)
		require.NoError(t, err)
		require.Len(t, recs, 1, "acknowledged record %s/%d lost", a.stream, a.offset)
		assert.JSONEq(t, a.value, string(recs[0].Value))
	}
	// No duplicates: each stream holds exactly its acknowledged records
	// (a request cut by the shutdown may have committed without an answer,
	// which would show here as one extra record at the end).
	perStream := map[string]int{}
	for _, a := range acked {
		perStream[a.stream]++
	}
	for stream, n := range perStream {
		info, err := st.StreamInfo(context.Background(), stream)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, info.NextOffset, uint64(n))
		assert.LessOrEqual(t, info.NextOffset, uint64(n+1))
	}
}
