import FuzzDriver

runFuzzer { data, size in fuzzEnvelope(data, size) }
