using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/ParamDb.Bench.Micro -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(ParamDb.Bench.Micro.KvBlockBenchmarks).Assembly).Run(args);
