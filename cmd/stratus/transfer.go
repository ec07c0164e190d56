package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/transfer"
)

// transferCommands are `stratus export` and `stratus import`: moving
// repositories through an OCI image layout, for networks the registry
// cannot reach.
func transferCommands(stdout, stderr io.Writer, env []string) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "export",
			Usage:     "write repositories (all tags, or those the filters select) to an OCI image layout directory, or a tar when OUT ends in .tar",
			ArgsUsage: "OUT",
			Flags: append(configFlags(),
				&cli.StringSliceFlag{Name: "repo", Usage: "export repositories matching `GLOB` (doublestar, e.g. prod/**; repeatable; default all)"},
				&cli.StringSliceFlag{Name: "tag", Usage: "export tags matching `GLOB` (repeatable; default all)"}),
			Action: withConfig(env, func(c *cli.Context, cfg *Config) error {
				if c.NArg() != 1 {
					return errors.New("export: want exactly one OUT")
				}
				f := transfer.Filter{Repos: c.StringSlice("repo"), Tags: c.StringSlice("tag")}
				return runExport(c.Context, cfg, f, c.Args().First(), stdout, stderr)
			}),
		},
		{
			Name:      "import",
			Usage:     "load an OCI image layout directory or tar written by `stratus export` into the configured storage, verifying every digest (no server needed)",
			ArgsUsage: "IN",
			Flags:     configFlags(),
			Action: withConfig(env, func(c *cli.Context, cfg *Config) error {
				if c.NArg() != 1 {
					return errors.New("import: want exactly one IN")
				}
				return runImport(c.Context, cfg, c.Args().First(), stdout, stderr)
			}),
		},
	}
}

// openContent opens the content store over the configured storage and
// lock store, as serve does, so pins are shared with running replicas.
func openContent(ctx context.Context, cfg *Config, logOut io.Writer) (*content.Store, int64, time.Duration, func(), error) {
	logger := newLogger(cfg.Log, logOut)
	driver, err := openStorage(ctx, cfg, logger)
	if err != nil {
		return nil, 0, 0, nil, fmt.Errorf("storage: %w", err)
	}
	locks, err := openLocking(ctx, cfg, logger)
	if err != nil {
		driver.Close()
		return nil, 0, 0, nil, fmt.Errorf("redis: %w", err)
	}
	closeAll := func() { locks.Close(); driver.Close() }
	rc := cfg.Registry
	rc.SetDefaults()
	store, err := content.New(driver, locks, content.Options{MaxManifestSize: int64(rc.MaxManifestSize), Logger: logger})
	if err != nil {
		closeAll()
		return nil, 0, 0, nil, err
	}
	return store, int64(rc.MaxManifestSize), rc.PinTimeout, closeAll, nil
}

func runExport(ctx context.Context, cfg *Config, f transfer.Filter, out string, stdout, logOut io.Writer) error {
	store, _, _, closeAll, err := openContent(ctx, cfg, logOut)
	if err != nil {
		return err
	}
	defer closeAll()
	st, err := transfer.Export(ctx, store, out, f, time.Now())
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %d repositories, %d tags: %d manifests and %d blobs (%d bytes) to %s\n",
		st.Repositories, st.Tags, st.Manifests, st.Blobs, st.Bytes, out)
	return nil
}

func runImport(ctx context.Context, cfg *Config, in string, stdout, logOut io.Writer) error {
	store, maxManifest, pinTimeout, closeAll, err := openContent(ctx, cfg, logOut)
	if err != nil {
		return err
	}
	defer closeAll()
	pols, err := cfg.Policies.build()
	if err != nil {
		return err
	}
	opts := transfer.ImportOptions{MaxManifestSize: maxManifest, PinTimeout: pinTimeout}
	if pols.tags != nil {
		opts.Immutable = pols.tags.Immutable
	}
	st, err := transfer.Import(ctx, store, in, opts)
	fmt.Fprintf(stdout, "imported %d, already present %d (blobs %d/%d, manifests %d/%d, tags %d/%d)\n",
		st.Imported(), st.Present(), st.BlobsImported, st.BlobsPresent, st.ManifestsImported, st.ManifestsPresent, st.TagsSet, st.TagsPresent)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}
