package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/stratus-registry/stratus/auth/htpasswd"
)

// maxPassword bounds what is read from stdin; bcrypt uses at most 72 bytes.
const maxPassword = 1024

// htpasswdCommand is `stratus htpasswd add --file F USER`. The password
// comes from stdin (the app's Reader) (a prompt without echo on a terminal), never from the
// command line, where ps and shell history would show it.
func htpasswdCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "htpasswd",
		Usage: "manage the htpasswd file of auth.htpasswd.path",
		Subcommands: []*cli.Command{{
			Name:      "add",
			Usage:     "add a user or replace its password (bcrypt); the password is read from stdin",
			ArgsUsage: "USER",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "htpasswd `FILE` (created with mode 0600 if missing)", Required: true},
				&cli.IntFlag{Name: "cost", Value: bcrypt.DefaultCost, Usage: fmt.Sprintf("bcrypt cost (%d-%d)", bcrypt.MinCost, bcrypt.MaxCost)},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("htpasswd add: want exactly one USER (the password is read from stdin)")
				}
				cost := c.Int("cost")
				if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
					return fmt.Errorf("htpasswd add: --cost %d: want %d to %d", cost, bcrypt.MinCost, bcrypt.MaxCost)
				}
				user := c.Args().First()
				password, err := readPassword(c.App.Reader, stdout, user)
				if err != nil {
					return err
				}
				if err := htpasswd.Set(c.String("file"), user, password, cost); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "htpasswd: %s written to %s\n", user, c.String("file"))
				return nil
			},
		}},
	}
}

// readPassword reads one line from stdin; on a terminal it prompts twice
// without echo.
func readPassword(stdin io.Reader, stdout io.Writer, user string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stdout, "Password for %s: ", user)
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", fmt.Errorf("htpasswd add: %w", err)
		}
		fmt.Fprint(stdout, "Again: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", fmt.Errorf("htpasswd add: %w", err)
		}
		if string(first) != string(second) {
			return "", errors.New("htpasswd add: the passwords differ")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, maxPassword)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("htpasswd add: reading the password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return "", errors.New("htpasswd add: no password on stdin (pipe it in: printf '%s\\n' \"$PASSWORD\" | stratus htpasswd add ...)")
	}
	return password, nil
}
