package journal

import "fmt"

// EntryKind says what an entry's payload holds. It is stored in the
// frame's flags byte (segment version 2; see doc.go). A plain value.
type EntryKind uint8

// The kinds. Their values are part of the format: NEVER CHANGE ONE, add a
// new value (and teach kindAllowed which segment versions accept it).
const (
	// KindGroups: the payload is a concatenation of groups (each the output
	// of AppendGroup), as Write writes it. It may be empty: no groups, no
	// records (raft's empty entries).
	KindGroups EntryKind = 0
	// KindConfChange: opaque bytes, a raft ConfChangeV2 (or ConfChange) as
	// marshaled by the caller. Such an entry has no records and no groups.
	KindConfChange EntryKind = 1
)

// known reports whether k is a kind this version of the format defines.
func (k EntryKind) known() bool { return k <= KindConfChange }

// String returns "groups", "conf-change" or EntryKind(n).
func (k EntryKind) String() string {
	switch k {
	case KindGroups:
		return "groups"
	case KindConfChange:
		return "conf-change"
	default:
		return fmt.Sprintf("EntryKind(%d)", uint8(k))
	}
}
