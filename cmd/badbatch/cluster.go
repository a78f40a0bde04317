package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and change a cluster's membership (status, add, remove)",
	}
	cmd.AddCommand(newClusterStatusCmd(), newClusterAddCmd(), newClusterRemoveCmd())
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster as the node at --server sees it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.ClusterStatus(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprintf(out, "node %d (%s), leader %d, term %d, commit %d, applied %d\n",
				st.NodeID, st.Role, st.LeaderID, st.Term, st.CommitIndex, st.AppliedIndex)
			if st.Error != "" {
				fmt.Fprintf(out, "stopped: %s\n", st.Error)
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tHEALTHY\tMATCH\tCLUSTER ADDR\tURL")
			for _, n := range st.Nodes {
				fmt.Fprintf(tw, "%d\t%s\t%v\t%d\t%s\t%s\n", n.ID, n.Role, n.Healthy, n.MatchIndex, n.ClusterAddr, n.URL)
			}
			return tw.Flush()
		},
	}
	addClientFlags(cmd, &f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return cmd
}

func newClusterAddCmd() *cobra.Command {
	var f clientFlags
	var clusterAddr, url string
	cmd := &cobra.Command{
		Use:   "add ID --cluster-addr HOST:PORT [--url URL]",
		Short: "Add node ID as a learner (promoted to voter once caught up); then start it with --join",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("node id %q: want a positive integer", args[0])
			}
			if clusterAddr == "" {
				return fmt.Errorf("--cluster-addr is required")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.AddNode(cmd.Context(), id, clusterAddr, url); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %d added as a learner; start it with --node-id %d --cluster-addr %s --join %s\n", id, id, clusterAddr, f.server)
			return nil
		},
	}
	addClientFlags(cmd, &f)
	cmd.Flags().StringVar(&clusterAddr, "cluster-addr", "", "the new node's cluster address")
	cmd.Flags().StringVar(&url, "url", "", "the new node's HTTP URL (it also announces it itself)")
	return cmd
}

func newClusterRemoveCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove node ID from the cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("node id %q: want a positive integer", args[0])
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.RemoveNode(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %d removed\n", id)
			return nil
		},
	}
	addClientFlags(cmd, &f)
	return cmd
}
