// Raft groups time elections in hundreds of milliseconds; on a small shared machine, tests running side by side
// would starve each other's heartbeats and measure the machine instead of the code.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
