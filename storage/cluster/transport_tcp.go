package cluster

import "github.com/badbatch/badbatch/storage/cluster/transport"

// newTCPTransport is the default NewTransport: TCP with authenticated
// framing (package transport, decision 0011).
func newTCPTransport(c *TransportConfig) (Transport, error) {
	o := transport.DefaultOptions()
	o.NodeID, o.ClusterID, o.ListenAddr = c.NodeID, c.ClusterID, c.ClusterAddr
	o.Secret, o.HTTPURL, o.Logger = c.Secret, c.HTTPURL, c.Logger
	o.Handler, o.Snapshots = c.Handler, c.Snapshots
	return transport.New(o)
}
