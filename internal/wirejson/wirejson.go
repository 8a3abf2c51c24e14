// Package wirejson gives the JSON form of an AWS SDK input as its wire request
// carries it: unset members (nil, "", empty lists and objects) left out. Plans print
// it; tests compare it with what the SDK sent.
package wirejson

import "encoding/json"

// Of returns v's JSON form (maps, slices, strings, float64s, bools) without unset
// members. A value that does not marshal is returned as is.
func Of(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return v
	}
	return Prune(x)
}

// Prune drops unset members from a decoded JSON value; it returns nil when nothing
// is left.
func Prune(x any) any {
	switch v := x.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if p := Prune(e); p != nil {
				out[k] = p
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, e := range v {
			if p := Prune(e); p != nil {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case string:
		if v == "" {
			return nil
		}
		return v
	}
	return x
}
