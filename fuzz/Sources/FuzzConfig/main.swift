import FuzzDriver

runFuzzer { data, size in fuzzConfig(data, size) }
