package crashtest

import "testing"

// clusterNet wires the nodes of a procCluster together.
type clusterNet interface {
	// addrs allocates node id's addresses.
	addrs(t *testing.T, id uint64) nodeAddrs
	// name says which network ran, for the log.
	name() string
}

// nodeAddrs are one node's addresses and how its process is started.
type nodeAddrs struct {
	http    string // the HTTP listen address (host:port)
	cluster string // the cluster address peers dial
	listen  string // where the cluster port listens, when not cluster
	// wrap prefixes the command (ip netns exec NS).
	wrap []string
	// insecure adds --insecure-no-auth (a non-loopback HTTP address).
	insecure bool
}

// loopbackNet is the default: free ports on 127.0.0.1.
type loopbackNet struct{}

func (loopbackNet) addrs(t *testing.T, _ uint64) nodeAddrs {
	return nodeAddrs{http: freeAddr(t), cluster: freeAddr(t)}
}

func (loopbackNet) name() string { return "loopback" }
