# bench/virtio's summary of the lab log (bench/virtio/run.sh): each figure, keel/QEMU and
# VHDX/raw ratios and the goals met or not, on stdout ("bench/virtio: ...") and as a
# Markdown table in the file md (for docs/BENCHMARKS.md).
#   bench: disk VMM FORMAT CASE kibps=K iops=I kib=M cpu_ms=C
#   bench: net|switch VMM streams=N mibps=R secs=S cpu_ms=C (switch: one per round; medians)
#   bench: nat ... (median, min and max over the rounds)
#   bench: kvm disk VMM FORMAT CASE [dev_ios=D] unit=req n=N COUNTER=DELTA/PER ... and
#   bench: kvm net|switch|nat VMM streams=N side=tx|rx unit=MiB n=M COUNTER=DELTA/PER ...
#         (bench/virtio/kvm_stats.sh): KVM's counters per request or MiB, side by side

function kv(from,    i, a) { # the key=value fields from field `from` on, into V[]
	delete V
	for (i = from; i <= NF; i++)
		if (split($i, a, "=") == 2) V[a[1]] = a[2]
}
# stats(" v1 v2 ..."): "median min max n"; fmt: "median [min max]"
function stats(list,    v, n, i, j, x, med) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
	med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	return sprintf("%.2f %.2f %.2f %d", med, v[1], v[n], n)
}
# paired(" a1 a2 ...", " b1 b2 ..."): the median of the per-round ratios a_j/b_j (round j of
# one side against round j of the other, run minutes apart: the host's load, which swings
# single figures by tens of percent in the lab, falls on both of a pair alike); PER gets each
# round's ratio (" 1.02 0.97 ..."); 0 with no pair.
function paired(a, b,    xa, xb, n, j, l, st) {
	n = split(a, xa, " "); split(b, xb, " ")
	l = ""; PER = ""
	for (j = 1; j <= n; j++) if ((j in xb) && xb[j] > 0) { l = l " " xa[j] / xb[j]; PER = PER sprintf(" %.2f", xa[j] / xb[j]) }
	if (l == "") return 0
	split(stats(l), st, " ")
	return st[1]
}
function fmt(s,    a) { split(s, a, " "); return sprintf("%s [%s %s]", a[1], a[2], a[3]) }
function met(ok) { return ok ? "met" : "NOT met" }
function num(arr, key, f) { return (key in arr) ? sprintf(f, arr[key]) : "-" } # "-": not measured
function ratio(r) { return r < 0 ? "-" : sprintf("%.2f", r) }
function row(s) { print s >md }
# CPU ms per GiB moved
function per_gib(cpu, mib) { return mib > 0 ? cpu * 1024 / mib : 0 }
# The counters of a "bench: kvm" line (in V, from kv()) under key: their deltas (the part
# before the "/") summed over the lines of a key (the switch's rounds) and its n (requests or
# MiB) summed, so that kfmt gives the whole per request or MiB; the *_ns ones in microseconds.
function kvm_put(key,    i, c, a) {
	KN[key] += V["n"]
	for (i = 1; i <= nkc; i++) {
		c = kcol[i]
		if (!(c in V) || split(V[c], a, "/") != 2 || a[1] == "-") K[key, c] = "-"
		else if (K[key, c] != "-") K[key, c] += c ~ /_ns$/ ? a[1] / 1000 : a[1]
	}
}
function kfmt(key, c,    v) {
	if (!((key, c) in K) || K[key, c] == "-" || KN[key] <= 0) return "-"
	v = K[key, c] / KN[key]
	return sprintf(v >= 100 ? "%.0f" : "%.2f", v)
}
# "x / y" of counter c for keys x and y
function kpair(x, y, c) { return kfmt(x, c) " / " kfmt(y, c) }
function kvm_cells(x, y,    i, out) {
	out = ""
	for (i = 1; i <= nkc; i++) out = out " | " kpair(x, y, kcol[i])
	return out
}
function kvm_header(first,    i, h, sep) {
	h = "| " first; sep = "|---"
	for (i = 1; i <= nkc; i++) { h = h " | " kname[kcol[i]]; sep = sep "|---" }
	return h " |\n" sep "|"
}
BEGIN {
	nkc = split("exits io mmio hlt intr irqwin other emul inj wake poll_ns wait_ns", kcol, " ")
	split("exits,port I/O,MMIO to user space,HLT,host interrupts,interrupt windows,other exits,emulated instructions,interrupts injected,halt wake-ups,halt polling us,halted us", kn, ",")
	for (i = 1; i <= nkc; i++) kname[kcol[i]] = kn[i]
}

# A case's rounds (disk_bench): the median of each figure.
/^bench: disk (keel|qemu) (raw|vhdx) / {
	kv(6)
	k = $3 " " $4 " " $5
	dml[k] = dml[k] " " V["kibps"] / 1024; dil[k] = dil[k] " " V["iops"]; dcl[k] = dcl[k] " " per_gib(V["cpu_ms"], V["kib"] / 1024)
	split(stats(dml[k]), st, " "); dmib[k] = st[1]; drounds[k] = st[4]
	split(stats(dil[k]), st, " "); diops[k] = st[1]
	split(stats(dcl[k]), st, " "); dcpu[k] = st[1]
	if (!($5 in seen)) { seen[$5] = 1; cases[++ncases] = $5 }
}
# More than one line for a key (switch: its rounds): the median of each figure, every value
# kept in order (nlist, for the switch's per-round ratios).
/^bench: (net|switch) [a-z]+ streams=/ {
	kv(4)
	k = $2 " " $3 " " V["streams"]
	nlist[k] = nlist[k] " " V["mibps"]; clist[k] = clist[k] " " per_gib(V["cpu_ms"], V["mibps"] * V["secs"])
	split(stats(nlist[k]), st, " "); nmib[k] = st[1]; nrounds[k] = st[4]
	split(stats(clist[k]), st, " "); ncpu[k] = st[1]
	if (!(($2 " " V["streams"]) in nseen)) { nseen[$2 " " V["streams"]] = 1; nets[++nnets] = $2 " " V["streams"] }
}
/^bench: [a-z]+ (qemuvh|keelvh) not measured/ { print "bench/virtio: " substr($0, 8) }
/^bench: nat [a-z]+ tcp MiBps/ { split($5, t, "="); nt[$3] = nt[$3] " " t[2] / 100; split($6, c, "="); nc[$3] = nc[$3] " " c[2] }
/^bench: nat [a-z]+ tcp FAIL / { nf[$3]++ }
/^bench: nat [a-z]+ lease_ms=/ { split($4, l, "="); nl[$3] = nl[$3] " " l[2] }
# KVM's counters: K[key, counter] = per unit ("-": not available), key "FORMAT CASE VMM" for
# disk, "LABEL VMM STREAMS SIDE" for the network
/^bench: kvm disk (keel|qemu) (raw|vhdx) / {
	kv(7)
	kvm_put($5 " " $6 " " $4)
	kdev[$5 " " $6 " " $4] = ("dev_ios" in V) ? V["dev_ios"] : "-"
	if (!(($5 " " $6) in kseen)) { kseen[$5 " " $6] = 1; kcases[++nkcases] = $5 " " $6 }
}
/^bench: kvm (net|switch|nat) [a-z]+ streams=[0-9]+ side=/ {
	kv(5)
	k = $3 " " $4 " " V["streams"]
	kvm_put(k " " V["side"])
	if (!(k in kseen)) { kseen[k] = 1; knets[++nknets] = k }
}
/^bench: kvm not available: / { print "bench/virtio: " substr($0, 8) }

END {
	split("raw vhdx", fmts, " ")
	ndisk = 0; ndisk_ok = 0
	for (f = 1; f <= 2; f++) {
		F = fmts[f]
		header = 0
		for (ci = 1; ci <= ncases; ci++) {
			C = cases[ci]
			kk = "keel " F " " C; qk = "qemu " F " " C
			if (!(kk in dmib) || !(qk in dmib)) continue
			if (!header) {
				row(""); row("| " F ": fio case | keel MiB/s (IOPS) | QEMU MiB/s (IOPS) | keel/QEMU (median of the rounds' ratios) | CPU ms/GiB keel | QEMU | keel/QEMU | goal (>= QEMU at <= CPU) |")
				row("|---|---|---|---|---|---|---|---|")
				header = 1
			}
			# keel/QEMU: the median of each round's ratio (the n-th keel figure against the
			# n-th QEMU one), for throughput and for CPU per GiB
			cr = paired(dcl[kk], dcl[qk])
			r = paired(dml[kk], dml[qk])
			per = drounds[kk] > 1 ? PER : ""
			ok = r >= 1 && cr <= 1
			ndisk++; ndisk_ok += ok
			printf "bench/virtio: disk %-4s %-20s keel %8.2f MiB/s (%d IOPS), QEMU %8.2f MiB/s (%d IOPS): keel/QEMU %.2f%s; VMM CPU ms/GiB keel %.0f, QEMU %.0f: keel/QEMU %.2f; goal %s\n", \
				F, C, dmib[kk], diops[kk], dmib[qk], diops[qk], r, per == "" ? "" : sprintf(" (median of %d rounds' ratios; each round's:%s)", drounds[kk], per), dcpu[kk], dcpu[qk], cr, met(ok)
			row(sprintf("| %s | %.2f (%d) | %.2f (%d) | %.2f%s | %.0f | %.0f | %.2f | %s |", C, dmib[kk], diops[kk], dmib[qk], diops[qk], r, per == "" ? "" : " (rounds:" per ")", dcpu[kk], dcpu[qk], cr, met(ok)))
		}
	}
	nv = 0; nv_ok = 0; header = 0
	for (ci = 1; ci <= ncases; ci++) {
		C = cases[ci]
		if (!(("keel vhdx " C) in dmib) || !(("keel raw " C) in dmib)) continue
		if (!header) {
			row(""); row("| fio case | keel VHDX/raw (median of the rounds' ratios; medians MiB/s) | goal (>= 0.90) | QEMU VHDX/raw (MiB/s) |")
			row("|---|---|---|---|")
			header = 1
		}
		# the median of each round's VHDX/raw (both formats' guests up at once, disk_bench)
		qr = paired(dml["qemu vhdx " C], dml["qemu raw " C])
		kr = paired(dml["keel vhdx " C], dml["keel raw " C])
		per = drounds["keel vhdx " C] > 1 ? PER : ""
		nv++; nv_ok += kr >= 0.9
		printf "bench/virtio: vhdx/raw %-20s keel %.2f (%.2f vs %.2f MiB/s%s): goal >= 0.90 %s; QEMU %.2f\n", \
			C, kr, dmib["keel vhdx " C], dmib["keel raw " C], per == "" ? "" : "; each round's:" per, met(kr >= 0.9), qr
		row(sprintf("| %s | %.2f (%.2f / %.2f)%s | %s | %.2f (%.2f / %.2f) |", C, kr, dmib["keel vhdx " C], dmib["keel raw " C], per == "" ? "" : " (rounds:" per ")", met(kr >= 0.9), qr, dmib["qemu vhdx " C], dmib["qemu raw " C]))
	}
	# net: keel-vmm's user-space path against QEMU's; keel-vmm on vhost-net against QEMU on
	# vhost-net (issue 16's goal: at least QEMU with vhost-net, keel's kernel path then).
	nn = 0; nn_ok = 0; header = 0
	for (i = 1; i <= nnets; i++) {
		split(nets[i], a, " "); L = a[1]; S = a[2]
		if (L != "net") continue
		k = "net keel " S; kh = "net keelvh " S; q = "net qemu " S; v = "net qemuvh " S
		if (!(k in nmib) && !(kh in nmib)) continue
		if (!header) {
			row(""); row("| network (iperf3, guest to guest, hand-made bridge) | keel user space MiB/s | QEMU MiB/s | keel/QEMU | keel vhost-net MiB/s | QEMU vhost-net MiB/s | keel/QEMU vhost-net | CPU ms/GiB keel, QEMU, keel vhost, QEMU vhost | goal (keel >= QEMU vhost-net) |")
			row("|---|---|---|---|---|---|---|---|---|")
			header = 1
		}
		rq = (k in nmib) && (q in nmib) && nmib[q] > 0 ? nmib[k] / nmib[q] : -1
		# The kernel paths' rounds (net_rounds): the median of each round's keel/QEMU on vhost-net.
		rv = (kh in nlist) && (v in nlist) ? paired(nlist[kh], nlist[v]) : -1
		per = rv >= 0 ? PER : ""
		if (rv == 0 && !(nmib[v] > 0)) rv = -1
		goal = rv < 0 ? "not measured" : met(rv >= 1)
		if (rv >= 0) { nn++; nn_ok += rv >= 1 }
		cpus = sprintf("%s, %s, %s, %s", num(ncpu, k, "%.0f"), num(ncpu, q, "%.0f"), num(ncpu, kh, "%.0f"), num(ncpu, v, "%.0f"))
		rounds = nrounds[kh] > 1 ? sprintf(" (median of %d rounds' ratios; each round's:%s)", nrounds[kh], per) : ""
		printf "bench/virtio: net %d stream(s): keel %s MiB/s, QEMU %s: keel/QEMU %s; keel vhost-net %s, QEMU vhost-net %s: keel/QEMU %s%s; VMM CPU ms/GiB %s; goal %s\n", \
			S, num(nmib, k, "%.2f"), num(nmib, q, "%.2f"), ratio(rq), num(nmib, kh, "%.2f"), num(nmib, v, "%.2f"), ratio(rv), rounds, cpus, goal
		row(sprintf("| %d stream(s) | %s | %s | %s | %s | %s | %s%s | %s | %s |", S, num(nmib, k, "%.2f"), num(nmib, q, "%.2f"), ratio(rq), \
			num(nmib, kh, "%.2f"), num(nmib, v, "%.2f"), ratio(rv), nrounds[kh] > 1 ? " (rounds:" per ")" : "", cpus, goal))
	}
	# switch: keel's guests on a keel switch (keeld, vhost-net) against the same keel-vmm guests
	# on a bridge made by hand (issue 12's goal: at least the hand-made bridge's), QEMU's there.
	ns = 0; ns_ok = 0; header = 0
	for (i = 1; i <= nnets; i++) {
		split(nets[i], a, " "); L = a[1]; S = a[2]
		if (L != "switch") continue
		k = "switch keel " S; kh = "switch keelvh " S; q = "switch qemu " S
		if (!(k in nmib)) continue
		if (!header) {
			row(""); row("| guest to guest (iperf3) | keel switch MiB/s | keel-vmm on a hand-made bridge MiB/s | switch/bridge | QEMU on the bridge MiB/s | CPU ms/GiB switch, bridge, QEMU | goal (switch >= bridge) |")
			row("|---|---|---|---|---|---|---|")
			header = 1
		}
		# The median of each round's switch/bridge (the n-th switch figure against the n-th
		# bridge one).
		rb = (kh in nlist) ? paired(nlist[k], nlist[kh]) : -1
		per = rb >= 0 ? PER : ""
		if (rb == 0 && !(nmib[kh] > 0)) rb = -1
		goal = rb < 0 ? "not measured" : met(rb >= 1)
		if (rb >= 0) { ns++; ns_ok += rb >= 1 }
		cpus = sprintf("%s, %s, %s", num(ncpu, k, "%.0f"), num(ncpu, kh, "%.0f"), num(ncpu, q, "%.0f"))
		rounds = nrounds[k] > 1 ? sprintf(" (median of %d rounds' ratios; each round's switch/bridge:%s)", nrounds[k], per) : ""
		printf "bench/virtio: switch %d stream(s): keel switch %.2f MiB/s, keel-vmm on a hand-made bridge %s: switch/bridge %s%s; QEMU on the bridge %s; VMM CPU ms/GiB %s; goal %s\n", \
			S, nmib[k], num(nmib, kh, "%.2f"), ratio(rb), rounds, num(nmib, q, "%.2f"), cpus, goal
		row(sprintf("| %d stream(s) | %.2f | %s | %s%s | %s | %s | %s |", S, nmib[k], num(nmib, kh, "%.2f"), ratio(rb), per == "" ? "" : " (rounds:" per ")", num(nmib, q, "%.2f"), cpus, goal))
	}
	# KVM's counters: keel and QEMU side by side, per fio request (disk) or per MiB (network)
	for (f = 1; f <= 2; f++) {
		F = fmts[f]
		header = 0
		for (ci = 1; ci <= nkcases; ci++) {
			split(kcases[ci], a, " ")
			if (a[1] != F) continue
			C = a[2]; kk = F " " C " keel"; qk = F " " C " qemu"
			if (!header) {
				row(""); row(kvm_header(F ": KVM per fio request, keel / QEMU"))
				header = 1
			}
			label = C == "console" ? "console only (per run, not per request)" : C " (" kdev[kk] " / " kdev[qk] " device requests)"
			row("| " label kvm_cells(kk, qk) " |")
			printf "bench/virtio: kvm %-4s %-20s %s keel / QEMU: exits %s, port I/O %s, MMIO %s, HLT %s, host interrupts %s, interrupt windows %s, other %s, interrupts injected %s, halt polling us %s\n", \
				F, C, (C == "console" ? "per run" : "per request"), kpair(kk, qk, "exits"), kpair(kk, qk, "io"), kpair(kk, qk, "mmio"), \
				kpair(kk, qk, "hlt"), kpair(kk, qk, "intr"), kpair(kk, qk, "irqwin"), kpair(kk, qk, "other"), kpair(kk, qk, "inj"), kpair(kk, qk, "poll_ns")
		}
	}
	header = 0
	for (i = 1; i <= nknets; i++) {
		k = knets[i]
		if (!header) {
			row(""); row(kvm_header("network: KVM per MiB moved, sender / receiver"))
			header = 1
		}
		row("| " k " stream(s)" kvm_cells(k " tx", k " rx") " |")
		printf "bench/virtio: kvm %s stream(s) per MiB sender / receiver: exits %s, port I/O %s, MMIO %s, HLT %s, other %s, interrupts injected %s\n", \
			k, kpair(k " tx", k " rx", "exits"), kpair(k " tx", k " rx", "io"), kpair(k " tx", k " rx", "mmio"), \
			kpair(k " tx", k " rx", "hlt"), kpair(k " tx", k " rx", "other"), kpair(k " tx", k " rx", "inj")
	}
	if (ndisk) printf "bench/virtio: goals: disk >= QEMU io_uring at <= CPU: %d of %d cases met\n", ndisk_ok, ndisk
	if (nv) printf "bench/virtio: goals: dynamic VHDX >= 0.90 raw: %d of %d cases met\n", nv_ok, nv
	if (nn) printf "bench/virtio: goals: network (keel vhost-net) >= QEMU with vhost-net: %d of %d met\n", nn_ok, nn
	if (ns) printf "bench/virtio: goals: keel switch >= the same VMs on a hand-made bridge: %d of %d met\n", ns_ok, ns
	# nat: the median, min and max of each side over its rounds, and the ratio of the medians
	for (side in nf) printf "bench/virtio: nat   %s: %d transfers of %d did not arrive whole (see the log)\n", side, nf[side], nf[side] + ((side in nt) ? split(nt[side], dummy, " ") : 0)
	if (("keel" in nt) && ("qemu" in nt)) {
		kt = stats(nt["keel"]); qt = stats(nt["qemu"]); kl = stats(nl["keel"]); ql = stats(nl["qemu"])
		kc = stats(nc["keel"]); qc = stats(nc["qemu"])
		split(kt, a, " "); split(qt, b, " ")
		printf "bench/virtio: nat   guest-to-outside TCP MiB/s, median [min max] of %d rounds: keel (Default Switch) %s, QEMU (hand-made bridge+NAT) %s: keel/QEMU = %.2f\n", a[4], fmt(kt), fmt(qt), (b[1] > 0 ? a[1] / b[1] : 0)
		printf "bench/virtio: nat   VMM CPU ms per transfer: keel %s, QEMU %s; DHCP lease ms (guest clock): keel %s, QEMU %s\n", fmt(kc), fmt(qc), fmt(kl), fmt(ql)
	}
	if (ndisk || nv || nn || ns || nkcases || nknets) printf "bench/virtio: the tables in Markdown: %s\n", md
}
