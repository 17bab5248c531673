package pool

import (
	"context"
	"slices"
	"strings"
	"time"

	"icebox/internal/model"
)

// Provisioned concurrency: for each version asked for, the pool keeps that
// many environments initialized ahead of any call (init run with
// AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency, then frozen at
// their first /next like any idle environment). They are the pool's own:
// never reaped for idleness nor evicted for memory, and replaced when they
// die or retire. A call of that version takes one when one is free and
// gives it back when it ends; calls beyond them run on on-demand
// environments. Their life is environment.Env's like every other's; a
// provision only says which environments it owns.

// Provision asks for Count initialized environments of Function (a view of
// a published version).
type Provision struct {
	Function model.Function
	Count    int
}

// provision is one version's provisioned environments on this node.
type provision struct {
	fn   model.Function // what they are built from
	want int
	// members are its environments, ready or in a call; ready are those
	// free for a call, most recently used last.
	members  map[*env]struct{}
	ready    []*env
	starting int
	// failure is why the last init failed: provisioning stops until the
	// function's configuration changes.
	failure string
}

// ProvisionStatus is how far one version's provisioning has got.
type ProvisionStatus struct {
	// Allocated counts its initialized environments, free or busy.
	Allocated int
	// Failure is why provisioning stopped, "" while it goes on.
	Failure string
}

// SetProvisioned replaces the provisioned concurrency of the function name
// by ps (none: ps empty) and starts or destroys environments to match.
func (p *Pool) SetProvisioned(name string, ps []Provision) {
	want := map[string]Provision{}
	for _, pr := range ps {
		k := pr.Function.ConfigKey()
		w := want[k]
		w.Function, w.Count = pr.Function, w.Count+pr.Count
		want[k] = w
	}
	var drop []*env
	var fill []*provision
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	for key, pv := range p.prov {
		if pv.fn.Name != name {
			continue
		}
		w, ok := want[key]
		if !ok {
			delete(p.prov, key)
			drop = append(drop, pv.ready...)
			pv.ready = nil
			continue
		}
		pv.want, pv.failure = w.Count, ""
		for len(pv.ready) > 0 && len(pv.members) > pv.want {
			drop = append(drop, pv.ready[0])
			pv.ready = pv.ready[1:]
			delete(pv.members, drop[len(drop)-1])
		}
		fill = append(fill, pv)
	}
	for key, w := range want {
		if p.prov[key] == nil {
			pv := &provision{fn: w.Function, want: w.Count, members: map[*env]struct{}{}}
			p.prov[key] = pv
			fill = append(fill, pv)
		}
	}
	p.mu.Unlock()
	for _, e := range drop {
		p.destroy(e)
	}
	for _, pv := range fill {
		go p.fill(pv)
	}
}

// fill starts environments for pv until it has as many as it wants, or an
// init fails.
func (p *Pool) fill(pv *provision) {
	key := pv.fn.ConfigKey()
	// Lambda gives a provisioned environment's init max(130 s, timeout).
	initTimeout := max(130*time.Second, time.Duration(pv.fn.Timeout)*time.Second)
	for {
		p.mu.Lock()
		if p.closed || p.prov[key] != pv || pv.failure != "" || len(pv.members)+pv.starting >= pv.want {
			p.mu.Unlock()
			return
		}
		pv.starting++
		p.calls++ // Close waits for it
		p.mu.Unlock()
		e, failure, err := p.start(context.Background(), &pv.fn, "", initTimeout, "init", initProvisioned)
		if err == nil && failure == nil {
			// No call follows this init: freeze it now, as every idle
			// environment is frozen.
			e.life.Park()
		}
		p.mu.Lock()
		pv.starting--
		p.calls--
		current := !p.closed && p.prov[key] == pv
		switch {
		case err != nil || failure != nil:
			if current {
				pv.failure = provisionFailure(err, failure)
			}
		case current:
			e.provision = pv
			pv.members[e] = struct{}{}
			pv.ready = append(pv.ready, e)
		}
		p.mu.Unlock()
		if failure != nil && failure.e != nil {
			p.destroy(failure.e)
		}
		if err != nil || failure != nil {
			p.log.Warn("provisioned environment failed to initialize", "function", pv.fn.Name, "version", pv.fn.VersionName(), "reason", provisionFailure(err, failure))
			return
		}
		if !current {
			p.destroy(e)
			return
		}
	}
}

// provisionFailure is the StatusReason of a failed provisioning.
func provisionFailure(err error, failure *initFailure) string {
	if err != nil {
		// icebox's own failure (no memory left in its budget, a sandbox it
		// could not build), not the function's.
		return "icebox could not start an environment: " + err.Error()
	}
	return "FUNCTION_ERROR_INIT_FAILURE: " + strings.TrimSpace(string(failure.payload))
}

// takeProvisioned hands out a free provisioned environment of key, if any.
// Preconditions: p.mu held.
func (p *Pool) takeProvisioned(key string) *env {
	pv := p.prov[key]
	if pv == nil || len(pv.ready) == 0 {
		return nil
	}
	e := pv.ready[len(pv.ready)-1]
	pv.ready = pv.ready[:len(pv.ready)-1]
	return e
}

// returnProvisioned gives a provisioned environment back after a call;
// false when it is no longer wanted (its provision was dropped or shrank).
// Preconditions: p.mu held; e.provision set.
func (p *Pool) returnProvisioned(e *env) bool {
	pv := e.provision
	if p.closed || p.prov[e.key] != pv || len(pv.members) > pv.want {
		return false
	}
	pv.ready = append(pv.ready, e)
	return true
}

// leaveProvision takes a destroyed environment out of its provision and
// returns the provision to refill, or nil.
// Preconditions: p.mu held.
func (p *Pool) leaveProvision(e *env) *provision {
	pv := e.provision
	if pv == nil {
		return nil
	}
	e.provision = nil
	delete(pv.members, e)
	pv.ready = slices.DeleteFunc(pv.ready, func(r *env) bool { return r == e })
	if p.closed || p.prov[e.key] != pv {
		return nil
	}
	return pv
}

// ProvisionedStatus reports the provisioning of the version fn.
func (p *Pool) ProvisionedStatus(fn *model.Function) ProvisionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	pv := p.prov[fn.ConfigKey()]
	if pv == nil {
		return ProvisionStatus{}
	}
	return ProvisionStatus{Allocated: len(pv.members), Failure: pv.failure}
}

// checkProvisioned destroys provisioned environments that died or retired
// while free; destroy refills their provisions.
func (p *Pool) checkProvisioned(now time.Time) {
	var dead []*env
	p.mu.Lock()
	for _, pv := range p.prov {
		for _, e := range pv.ready {
			if !e.life.State().TakesCalls() || e.retired(now) {
				dead = append(dead, e)
			}
		}
	}
	p.mu.Unlock()
	for _, e := range dead {
		p.destroy(e)
	}
}
