// Command stratus runs the Stratus container registry.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr, os.Environ()).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stratus:", err)
		os.Exit(1)
	}
}

func configFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML configuration `FILE` (optional; defaults apply without one)", EnvVars: []string{configEnvVar}},
		&cli.StringSliceFlag{Name: "set", Usage: "override one key, e.g. --set http.addr=:5001 (repeatable; wins over file and environment)"},
		&cli.StringFlag{Name: "addr", Usage: "listen address (same as --set http.addr=ADDR)"},
		&cli.StringFlag{Name: "root", Usage: "filesystem storage root (same as --set storage.filesystem.root=DIR)"},
	}
}

// overrides turns the command-line flags into key=value settings, which win
// over the file and the environment.
func overrides(c *cli.Context) []string {
	sets := c.StringSlice("set")
	if a := c.String("addr"); a != "" {
		sets = append(sets, "http.addr="+a)
	}
	if r := c.String("root"); r != "" {
		sets = append(sets, "storage.filesystem.root="+r)
	}
	return sets
}

func newApp(stdout, stderr io.Writer, env []string) *cli.App {
	return &cli.App{
		Name:      "stratus",
		Usage:     "an OCI container registry for fleets of stateless replicas",
		Writer:    stdout,
		ErrWriter: stderr,
		// Environment variables are read through env (not os.Getenv) so tests
		// can run the CLI in-process with their own environment.
		Commands: []*cli.Command{
			serveCommand(stderr, env),
			configCommand(stdout, env),
			gcCommand(stdout, stderr, env),
			htpasswdCommand(stdout),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(stdout, "stratus %s\n", buildVersion())
					return nil
				},
			},
		},
	}
}

// withConfig runs fn with the configuration the command's flags, the file
// and env describe, or reports every problem of it.
func withConfig(env []string, fn func(c *cli.Context, cfg *Config) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		cfg, err := loadConfig(c.String("config"), env, overrides(c))
		if err != nil {
			return fmt.Errorf("invalid configuration:\n%w", err)
		}
		return fn(c, cfg)
	}
}

func serveCommand(stderr io.Writer, env []string) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the registry",
		Flags: configFlags(),
		Action: withConfig(env, func(c *cli.Context, cfg *Config) error {
			return serve(c.Context, cfg, stderr)
		}),
	}
}

func configCommand(stdout io.Writer, env []string) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "configuration tools",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate a configuration file (with the environment applied) and print every problem",
			ArgsUsage: "FILE",
			Flags:     configFlags()[1:],
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("config check: want exactly one FILE")
				}
				cfg, err := loadConfig(c.Args().First(), env, overrides(c))
				if err != nil {
					fmt.Fprintln(stdout, err)
					return cli.Exit("configuration is invalid", 1)
				}
				fmt.Fprintf(stdout, "configuration OK: storage %s, %s sessions, listening on %s\n",
					cfg.Storage.Driver, sessionBackend(cfg), cfg.HTTP.Addr)
				return nil
			},
		}},
	}
}

func gcCommand(stdout, stderr io.Writer, env []string) *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "garbage collection",
		Subcommands: []*cli.Command{
			{
				Name:  "run",
				Usage: "run one garbage-collection pass against the configured storage and redis",
				Flags: append(configFlags(),
					&cli.BoolFlag{Name: "dry-run", Usage: "delete nothing; list what would be deleted and why"},
					&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}),
				Action: withConfig(env, func(c *cli.Context, cfg *Config) error {
					return gcRun(c.Context, cfg, c.Bool("dry-run"), c.Bool("json"), stdout, stderr)
				}),
			},
			{
				Name:  "status",
				Usage: "show the report of the last garbage-collection pass",
				Flags: append(configFlags(), &cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}),
				Action: withConfig(env, func(c *cli.Context, cfg *Config) error {
					return gcStatus(c.Context, cfg, c.Bool("json"), stdout, stderr)
				}),
			},
		},
	}
}

func sessionBackend(cfg *Config) string {
	if cfg.redisEnabled() {
		return "redis"
	}
	return "in-process"
}

func buildVersion() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		v += " (" + info.GoVersion
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += ", " + s.Value[:12]
			}
		}
		v += ")"
	}
	return v
}
