# Small hardware drivers: each takes its bus or pin objects in the constructor (a fake swaps in on
# the unix port), one class per file, no allocation in the steady state.
