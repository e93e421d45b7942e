//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wirescope/wirescope/capture/agentapi"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/server/workspace"
)

// agentFlags choose the agents a hub reads.
type agentFlags struct {
	urls      []string
	tokenFile string
	service   string
	timeout   time.Duration
}

func (f *agentFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.urls, "agents", nil, "read the node agents at these URLs (http://10.0.0.5:8899); repeat or separate with commas")
	fl.StringVar(&f.tokenFile, "agent-token-file", "", "file holding the agents' bearer token (or WIRESCOPE_AGENT_TOKEN)")
	fl.StringVar(&f.service, "agents-service", "", "discover the agents from the EndpointSlices of this headless Service (NAMESPACE/NAME); needs --kubeconfig or --in-cluster")
	fl.DurationVar(&f.timeout, "agent-timeout", source.DefaultPartTimeout, "an agent that does not answer a refresh within this long is reported unreachable and left out of answers")
}

// set reports whether agents are to be read.
func (f *agentFlags) set() bool { return len(f.urls) > 0 || f.service != "" }

// token reads the agents' token: it must exist (the agents were given it).
func (f *agentFlags) token() (string, error) {
	if t := strings.TrimSpace(os.Getenv("WIRESCOPE_AGENT_TOKEN")); t != "" {
		return t, nil
	}
	if f.tokenFile == "" {
		return "", errors.New("agents need their token: give --agent-token-file or set WIRESCOPE_AGENT_TOKEN")
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return "", fmt.Errorf("agent token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("agent token file %s is empty", f.tokenFile)
	}
	return t, nil
}

// openAgents serves what the agents captured (and the capture files
// given beside them), read again as they grow.
func (f *sourceFlags) openAgents(logger *slog.Logger, files []string) (backend, func(), error) {
	token, err := f.agents.token()
	if err != nil {
		return nil, nil, err
	}
	opts, cleanup, err := f.growingOptions(logger)
	if err != nil {
		return nil, nil, err
	}
	fo := source.FanoutOptions{Timeout: f.agents.timeout, New: func(url string) (source.Source, error) {
		return agentapi.NewClient(agentapi.ClientOptions{URL: url, Token: token})
	}}
	if len(files) > 0 {
		fs, err := source.OpenFiles(files, opts.FlowSpan)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		fo.Parts = append(fo.Parts, fs)
	}
	what := ""
	switch {
	case f.agents.service != "":
		discover, err := f.discoverAgents(logger)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		fo.Discover = discover
		what = "the agents of Service " + f.agents.service
	default:
		for _, u := range f.agents.urls {
			if _, err := agentapi.NewClient(agentapi.ClientOptions{URL: u, Token: token}); err != nil {
				cleanup()
				return nil, nil, err
			}
		}
		urls := f.agents.urls
		fo.Discover = func(context.Context) ([]string, error) { return urls, nil }
		what = fmt.Sprintf("%d agents", len(urls))
	}
	fan := source.NewFanout(fo)
	g, err := workspace.OpenGrowing(opts, what, fan, f.refresh)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	for _, m := range fan.Missing() {
		logger.Warn("agent", "state", m)
	}
	logger.Info("serving agents", "agents", what, "data_dir", opts.Dir)
	return g, func() { g.Close(); cleanup() }, nil
}

// discoverAgents lists the agents from the EndpointSlices of their
// Service, through the informers of the hub's identities: ready endpoints
// on the port named "api" (else any port), one URL each.
func (f *sourceFlags) discoverAgents(logger *slog.Logger) (func(context.Context) ([]string, error), error) {
	if f.kubeSrc == nil {
		return nil, errors.New("--agents-service needs the API server: give --kubeconfig or --in-cluster")
	}
	ns, name, ok := strings.Cut(f.agents.service, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("--agents-service %q: want NAMESPACE/NAME", f.agents.service)
	}
	k := f.kubeSrc
	return func(context.Context) ([]string, error) {
		agents, rejected := k.Agents(ns, name, "api")
		if len(rejected) > 0 {
			logger.Warn("agent discovery: endpoints that are not pods of the namespace left out (the agents' token is not sent there)",
				"service", f.agents.service, "endpoints", fmt.Sprint(rejected))
		}
		if len(agents) == 0 {
			return nil, fmt.Errorf("service %s/%s has no ready endpoints that are pods of its namespace (are the agents running?)", ns, name)
		}
		urls := make([]string, len(agents))
		for i, ap := range agents {
			urls[i] = "http://" + ap.String()
		}
		return urls, nil
	}, nil
}
