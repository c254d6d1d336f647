# The probe stage: results/probe/probe.pt, and results/probe/random.pt (the same architecture, head size and input
# normalisation at its seeded initialisation, read by the random-probe methods). probe.weights picks the rules:
# source trains the probe on the source task; imagenet, a checkpoint file and random import it (no source task).
if PROBE.kind == "source":

    include: "probe_train.smk"

else:

    include: "probe_import.smk"
