import FuzzDriver

runFuzzer { data, size in fuzzRESP(data, size) }
