package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/badbatch/badbatch/httpapi/client"
)

// newStreamCmd is the stream lifecycle: create, fork, close, delete.
func newStreamCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "stream",
		Short: "Create, fork, close or delete a stream",
	}
	root.AddCommand(newStreamCreateCmd(), newStreamForkCmd(), newStreamSimpleCmd("close"), newStreamSimpleCmd("delete"))
	return root
}

type streamConfigFlags struct {
	contentType string
	ttl         time.Duration
	expiresAt   string
	closed      bool
}

func addStreamConfigFlags(cmd *cobra.Command, f *streamConfigFlags) {
	fs := cmd.Flags()
	fs.StringVar(&f.contentType, "content-type", "", "the stream's content type (default application/octet-stream)")
	fs.DurationVar(&f.ttl, "ttl", 0, "delete the stream after this long without a read or an append (whole seconds)")
	fs.StringVar(&f.expiresAt, "expires-at", "", "delete the stream at this RFC 3339 time")
	fs.BoolVar(&f.closed, "closed", false, "create it closed")
}

func (f *streamConfigFlags) config() (client.StreamConfig, error) {
	cfg := client.StreamConfig{ContentType: f.contentType, TTL: f.ttl, Closed: f.closed}
	if f.expiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, f.expiresAt)
		if err != nil {
			return cfg, fmt.Errorf("--expires-at %q: want an RFC 3339 time", f.expiresAt)
		}
		cfg.ExpiresAt = t
	}
	if f.ttl < 0 || f.ttl%time.Second != 0 {
		return cfg, fmt.Errorf("--ttl %v: want whole seconds", f.ttl)
	}
	return cfg, nil
}

func newStreamCreateCmd() *cobra.Command {
	f := clientFlags{}
	cf := streamConfigFlags{}
	cmd := &cobra.Command{
		Use:   "create STREAM",
		Short: "Create a stream with a configuration (again with the same one: no change)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cf.config()
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			created, err := c.CreateStream(cmd.Context(), args[0], cfg)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s exists with this configuration\n", args[0])
			}
			return nil
		},
	}
	addClientFlags(cmd, &f)
	addStreamConfigFlags(cmd, &cf)
	withEnvHelp(cmd.Flags())
	return cmd
}

func newStreamForkCmd() *cobra.Command {
	f := clientFlags{}
	cf := streamConfigFlags{}
	cmd := &cobra.Command{
		Use:   "fork STREAM SOURCE OFFSET",
		Short: "Create STREAM as a fork of SOURCE: SOURCE's records below OFFSET, then its own",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			off, err := strconv.ParseUint(args[2], 10, 64)
			if err != nil {
				return fmt.Errorf("OFFSET %q: %w", args[2], err)
			}
			var cfg *client.StreamConfig
			if cmd.Flags().Changed("content-type") || cmd.Flags().Changed("ttl") || cmd.Flags().Changed("expires-at") {
				c, err := cf.config()
				if err != nil {
					return err
				}
				cfg = &c
			}
			if cf.closed {
				return errors.New("--closed: a fork starts open")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.ForkStream(cmd.Context(), args[0], args[1], off, cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "forked %s from %s at offset %d\n", args[0], args[1], off)
			return nil
		},
	}
	addClientFlags(cmd, &f)
	addStreamConfigFlags(cmd, &cf)
	withEnvHelp(cmd.Flags())
	return cmd
}

func newStreamSimpleCmd(verb string) *cobra.Command {
	f := clientFlags{}
	short := map[string]string{
		"close":  "Close a stream: no more appends; tails end after its last record",
		"delete": "Delete a stream (one with forks answers 410 until its last fork is deleted)",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " STREAM",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if verb == "close" {
				err = c.CloseStream(cmd.Context(), args[0])
			} else {
				err = c.DeleteStream(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%sd %s\n", verb, args[0])
			return nil
		},
	}
	addClientFlags(cmd, &f)
	withEnvHelp(cmd.Flags())
	return cmd
}
