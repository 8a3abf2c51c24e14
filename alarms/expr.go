package alarms

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// This file evaluates the subset of CloudWatch metric math that verdict's alarms
// use (IF, FILL with a scalar, comparisons, AND/OR, arithmetic, numbers, query
// IDs), one timestamp at a time, with the documented missing-data rules (CloudWatch
// User Guide, "Metric math syntax and functions" and "Using IF expressions"):
//   - arithmetic and comparisons treat a missing value of one time series as 0
//     when the other operand is a present time series; with no present time
//     series operand the datapoint is missing;
//   - division by zero drops the datapoint;
//   - IF(c, t, f): a missing condition drops the datapoint; a true condition
//     gives t (0 when t is a missing time series); a false one gives f, or drops
//     the datapoint when f is missing or omitted;
//   - FILL(x, s) is x where x has a datapoint and the scalar s where it has none,
//     so FILL(x, 0) == FILL(x, 1) is 1 exactly where x has a datapoint: verdict's
//     alarms use it to drop a guarded datapoint whose value is missing.

// value is one timestamp of a time series, or a scalar.
type value struct {
	v      float64
	ok     bool // present
	series bool // from a time series (vs a scalar literal)
}

type expr interface {
	eval(env map[string]value) value
}

type (
	numberExpr struct{ v float64 }
	idExpr     struct{ id string }
	negExpr    struct{ x expr }
	binaryExpr struct {
		op   string
		l, r expr
	}
	ifExpr   struct{ cond, then, els expr }
	fillExpr struct{ x, with expr }
)

func (e numberExpr) eval(map[string]value) value { return value{v: e.v, ok: true} }

func (e idExpr) eval(env map[string]value) value {
	v := env[e.id]
	v.series = true
	return v
}

func (e negExpr) eval(env map[string]value) value {
	x := e.x.eval(env)
	x.v = -x.v
	return x
}

func (e binaryExpr) eval(env map[string]value) value {
	l, r := e.l.eval(env), e.r.eval(env)
	series := l.series || r.series
	if !l.ok && !r.ok || (!l.ok && !r.series) || (!r.ok && !l.series) {
		return value{series: series}
	}
	// One present time series: the other, missing, counts as 0.
	if !l.ok {
		l.v = 0
	}
	if !r.ok {
		r.v = 0
	}
	b := func(c bool) value {
		if c {
			return value{v: 1, ok: true, series: series}
		}
		return value{v: 0, ok: true, series: series}
	}
	switch e.op {
	case "+":
		return value{v: l.v + r.v, ok: true, series: series}
	case "-":
		return value{v: l.v - r.v, ok: true, series: series}
	case "*":
		return value{v: l.v * r.v, ok: true, series: series}
	case "/":
		if r.v == 0 {
			return value{series: series}
		}
		return value{v: l.v / r.v, ok: true, series: series}
	case ">":
		return b(l.v > r.v)
	case ">=":
		return b(l.v >= r.v)
	case "<":
		return b(l.v < r.v)
	case "<=":
		return b(l.v <= r.v)
	case "==":
		return b(l.v == r.v)
	case "!=":
		return b(l.v != r.v)
	case "AND":
		return b(l.v != 0 && r.v != 0)
	case "OR":
		return b(l.v != 0 || r.v != 0)
	}
	return value{series: series}
}

func (e ifExpr) eval(env map[string]value) value {
	c := e.cond.eval(env)
	if !c.ok {
		return value{series: true}
	}
	if c.v != 0 {
		t := e.then.eval(env)
		if !t.ok {
			return value{v: 0, ok: true, series: true}
		}
		t.series = true
		return t
	}
	if e.els == nil {
		return value{series: true}
	}
	f := e.els.eval(env)
	f.series = true
	return f
}

func (e fillExpr) eval(env map[string]value) value {
	x := e.x.eval(env)
	if x.ok {
		x.series = true
		return x
	}
	w := e.with.eval(env)
	return value{v: w.v, ok: w.ok, series: true}
}

// parseExpr parses a metric math expression of the supported subset.
func parseExpr(s string) (expr, error) {
	p := &parser{toks: tokenize(s)}
	e, err := p.or()
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", s, err)
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("expression %q: unexpected %q", s, p.toks[p.pos])
	}
	return e, nil
}

// exprIDs lists the query IDs an expression refers to.
func exprIDs(e expr) []string {
	switch x := e.(type) {
	case idExpr:
		return []string{x.id}
	case negExpr:
		return exprIDs(x.x)
	case binaryExpr:
		return append(exprIDs(x.l), exprIDs(x.r)...)
	case ifExpr:
		ids := append(exprIDs(x.cond), exprIDs(x.then)...)
		if x.els != nil {
			ids = append(ids, exprIDs(x.els)...)
		}
		return ids
	case fillExpr:
		return append(exprIDs(x.x), exprIDs(x.with)...)
	}
	return nil
}

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case unicode.IsDigit(c) || c == '.':
			j := i
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || s[j] == '_') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			if i+1 < len(s) {
				if two := s[i : i+2]; two == ">=" || two == "<=" || two == "==" || two == "!=" || two == "&&" || two == "||" {
					toks = append(toks, two)
					i += 2
					continue
				}
			}
			toks = append(toks, string(c))
			i++
		}
	}
	return toks
}

type parser struct {
	toks []string
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *parser) expect(t string) error {
	if got := p.next(); got != t {
		return fmt.Errorf("want %q, got %q", t, got)
	}
	return nil
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	for err == nil && (p.peek() == "OR" || p.peek() == "||") {
		p.next()
		var r expr
		if r, err = p.and(); err == nil {
			l = binaryExpr{"OR", l, r}
		}
	}
	return l, err
}

func (p *parser) and() (expr, error) {
	l, err := p.cmp()
	for err == nil && (p.peek() == "AND" || p.peek() == "&&") {
		p.next()
		var r expr
		if r, err = p.cmp(); err == nil {
			l = binaryExpr{"AND", l, r}
		}
	}
	return l, err
}

func (p *parser) cmp() (expr, error) {
	l, err := p.add()
	if err != nil {
		return nil, err
	}
	switch op := p.peek(); op {
	case ">", ">=", "<", "<=", "==", "!=":
		p.next()
		r, err := p.add()
		if err != nil {
			return nil, err
		}
		return binaryExpr{op, l, r}, nil
	}
	return l, nil
}

func (p *parser) add() (expr, error) {
	l, err := p.mul()
	for err == nil && (p.peek() == "+" || p.peek() == "-") {
		op := p.next()
		var r expr
		if r, err = p.mul(); err == nil {
			l = binaryExpr{op, l, r}
		}
	}
	return l, err
}

func (p *parser) mul() (expr, error) {
	l, err := p.unary()
	for err == nil && (p.peek() == "*" || p.peek() == "/") {
		op := p.next()
		var r expr
		if r, err = p.unary(); err == nil {
			l = binaryExpr{op, l, r}
		}
	}
	return l, err
}

func (p *parser) unary() (expr, error) {
	if p.peek() == "-" {
		p.next()
		x, err := p.unary()
		return negExpr{x}, err
	}
	return p.primary()
}

func isNumber(e expr) bool {
	switch x := e.(type) {
	case numberExpr:
		return true
	case negExpr:
		return isNumber(x.x)
	}
	return false
}

// args parses a function's parenthesized, comma-separated arguments.
func (p *parser) args() ([]expr, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var args []expr
	for {
		a, err := p.or()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		if p.peek() != "," {
			break
		}
		p.next()
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return args, nil
}

func (p *parser) primary() (expr, error) {
	t := p.next()
	switch {
	case t == "":
		return nil, fmt.Errorf("unexpected end")
	case t == "(":
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	case t == "FILL":
		args, err := p.args()
		if err != nil {
			return nil, err
		}
		if len(args) != 2 {
			return nil, fmt.Errorf("FILL takes 2 arguments, got %d", len(args))
		}
		if !isNumber(args[1]) {
			return nil, fmt.Errorf("FILL: the local evaluator supports a number as the filler only")
		}
		return fillExpr{args[0], args[1]}, nil
	case t == "IF":
		args, err := p.args()
		if err != nil {
			return nil, err
		}
		if len(args) < 2 || len(args) > 3 {
			return nil, fmt.Errorf("IF takes 2 or 3 arguments, got %d", len(args))
		}
		e := ifExpr{cond: args[0], then: args[1]}
		if len(args) == 3 {
			e.els = args[2]
		}
		return e, nil
	case unicode.IsDigit(rune(t[0])) || t[0] == '.':
		v, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", t)
		}
		return numberExpr{v}, nil
	case unicode.IsLower(rune(t[0])):
		return idExpr{t}, nil
	case strings.ToUpper(t) == t && unicode.IsLetter(rune(t[0])):
		return nil, fmt.Errorf("function %s is not supported by the local evaluator", t)
	}
	return nil, fmt.Errorf("unexpected %q", t)
}
