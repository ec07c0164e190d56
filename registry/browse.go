package registry

import "github.com/stratus-registry/stratus/registry/content"

// Content is the content store the registry serves, for read-only views
// in the same process (the web UI). Writes must go through ServeHTTP, so
// that authorization, tag policy, audit and events apply.
func (g *Registry) Content() *content.Store { return g.content }

// EventSink is where the registry sends its events (nil-safe: a registry
// without notifications has a sink that drops them).
func (g *Registry) EventSink() EventSink { return g.events }
