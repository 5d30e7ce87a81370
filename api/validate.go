package api

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Limits from DESIGN.md ("Semantics").
const (
	MaxKeyLen   = 1024
	MaxValueLen = 1 << 20
	MaxHolder   = 256
)

// Lease bounds: a lease shorter than a second would expire in a leader change; one
// longer than a day is a key that should not have one.
const (
	MinTTLMs = 1000
	MaxTTLMs = 24 * 3600 * 1000
)

// Conditions are the binary operators of test(1) that the original accepted.
var Conditions = []string{"=", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge"}

// ValidCond reports whether op is one of Conditions.
func ValidCond(op string) bool { return slices.Contains(Conditions, op) }

// ValidateKey checks a key: a non-empty path of printable characters, no empty, "." or
// ".." segment, at most MaxKeyLen bytes. Keys never become file paths, but a key that
// would escape a folder in the original (`set ../../x v`) is refused all the same.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("key of %d bytes: the limit is %d", len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c == 0x7f {
			return fmt.Errorf("key %q: control characters and spaces are not allowed", key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("key %q: empty path segment (leading, trailing or double slash)", key)
		case ".", "..":
			return fmt.Errorf("key %q: %q segments are not allowed", key, seg)
		}
	}
	return nil
}

// Validate checks a request against its op's entry before it travels or is served: the
// key its shape asks for, the value's size, the operator, the ttl, --stale. The client
// refuses bad input with it before sending anything; the agent checks again.
func (r Request) Validate() error {
	info, ok := r.Op.Info()
	if !ok {
		return fmt.Errorf("%w (%d)", ErrUnknownOp, r.Op)
	}
	switch info.Key {
	case KeyNone:
		if r.Key != "" {
			return fmt.Errorf("%s takes no key", info.Name)
		}
	case KeyRequired:
		if err := ValidateKey(r.Key); err != nil {
			return err
		}
	case KeyDir:
		if r.Key != "" {
			if err := ValidateKey(r.Key); err != nil {
				return err
			}
		}
	case KeyPattern:
		if k := strings.TrimSuffix(r.Key, "/"); r.Key != "" && r.Key != "/" {
			if err := ValidateKey(k); err != nil {
				return err
			}
		}
	case KeyOrLease:
		if r.Lease == 0 {
			if err := ValidateKey(r.Key); err != nil {
				return err
			}
		}
	}
	if len(r.Value) > MaxValueLen || len(r.CondValue) > MaxValueLen {
		return fmt.Errorf("value of %d bytes: the limit is %d (1 MiB)", max(len(r.Value), len(r.CondValue)), MaxValueLen)
	}
	if !info.Value && len(r.Value) > 0 {
		return fmt.Errorf("%s takes no value", info.Name)
	}
	if info.Cond && !ValidCond(r.Cond) {
		return fmt.Errorf("unknown operator %q: use one of %s", r.Cond, strings.Join(Conditions, " "))
	}
	if !info.Cond && r.Cond != "" || !info.Cond && !info.CondValue && len(r.CondValue) > 0 {
		return fmt.Errorf("%s takes no condition", info.Name)
	}
	if info.Arg == ArgTTL && (r.TTLMs < MinTTLMs || r.TTLMs > MaxTTLMs) {
		return fmt.Errorf("ttl of %d ms: want 1s to 24h", r.TTLMs)
	}
	if info.Host == HostHolder && len(r.Holder) > MaxHolder {
		return fmt.Errorf("holder of %d bytes: the limit is %d", len(r.Holder), MaxHolder)
	}
	if info.Host == HostMember && r.Member == "" {
		return fmt.Errorf("%s: no member named", info.Name)
	}
	if info.Arg == ArgAfter && r.After != "" {
		if err := ValidateKey(r.After); err != nil {
			return fmt.Errorf("resume after: %w", err)
		}
	}
	if info.Arg == ArgPiece && (r.Backup == "" || len(r.Backup) > 64 || strings.Trim(r.Backup, "0123456789.") != "") {
		return fmt.Errorf("bad snapshot ID %q", r.Backup)
	}
	if r.FenceName != "" || r.FenceGen != 0 {
		if !info.Fence {
			return fmt.Errorf("%s takes no --fence", info.Name)
		}
		if err := ValidateKey(r.FenceName); err != nil {
			return fmt.Errorf("--fence: lock %w", err)
		}
		if r.FenceGen == 0 {
			return errors.New("--fence: generation 0: a lock's generations start at 1")
		}
	}
	if r.Token != 0 && !info.Token {
		return fmt.Errorf("%s takes no lease token", info.Name)
	}
	if info.Txn {
		if err := r.Txn.Validate(); err != nil {
			return err
		}
	} else if !r.Txn.empty() {
		return fmt.Errorf("%s takes no transaction", info.Name)
	}
	if info.Batch {
		if err := ValidateBatch(r.Batch); err != nil {
			return err
		}
	} else if len(r.Batch) > 0 {
		return fmt.Errorf("%s takes no batch", info.Name)
	}
	if r.Stale && info.Stale == StaleRefused {
		return fmt.Errorf("%s asks the leader: not with --stale", info.Name)
	}
	return nil
}
