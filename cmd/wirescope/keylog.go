package main

import (
	"github.com/spf13/pflag"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/tls"
)

// registerKeyLog adds --tls-keylog to a command that dissects.
func registerKeyLog(fl *pflag.FlagSet, path *string) {
	fl.StringVar(path, "tls-keylog", "", "decrypt the TLS sessions this NSS key log holds (what SSLKEYLOGFILE makes curl, browsers, OpenSSL and Go write; TLS 1.2 and 1.3); read again as it grows. Refused when others may read it (mode o+r). Its secrets are never shown")
}

// protocols are the dissectors to use: every one, TLS decrypting with
// the key log at path when one is given.
func protocols(path string) ([]proto.Protocol, error) {
	if path == "" {
		return dissect.All(), nil
	}
	k, err := tls.OpenKeyLog(path)
	if err != nil {
		return nil, err
	}
	return tls.WithKeys(dissect.All(), k), nil
}
