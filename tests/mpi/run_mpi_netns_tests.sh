#!/usr/bin/env bash
# Two hosts on one machine: two network namespaces made here, joined by a
# veth pair with loopback-range addresses (127.0.77.1 and .2, routed over the
# veth: route_localnet, and 127/8 no longer claimed by lo), each with its own
# host name. mpirun runs in the first and starts the second rank's daemon
# through an rsh agent that enters the second namespace; the ranks talk TCP
# over the veth only (btl tcp,self). Checks: the 2-host run trains to one
# process's weights; taking the link down mid-run ends the run with a clear
# message on rank 0 and no model file (OOB keepalives of 1-2 s, so mpirun
# notices within seconds); --resume then finishes from the last checkpoint.
# Skipped, with the reason, where namespaces cannot be made (not root, or a
# CI container without CAP_NET_ADMIN / CAP_SYS_ADMIN).
source "$(dirname "$0")/common.sh"
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null && command -v unshare >/dev/null || skip "ip (iproute2) or unshare not found"
NA=hone_a_$$; NB=hone_b_$$; VA=hva$$; VB=hvb$$
cleanup() { ip netns del "$NA" 2>/dev/null; ip netns del "$NB" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ip netns add "$NA" 2>"$T/ns.err" && ip netns add "$NB" 2>>"$T/ns.err" ||
  skip "cannot create network namespaces here: $(head -n 1 "$T/ns.err")"
setup() {
  ip link add "$VA" type veth peer name "$VB" &&
  ip link set "$VA" netns "$NA" && ip link set "$VB" netns "$NB" || return 1
  local ns i a
  for ns in "$NA:$VA:127.0.77.1" "$NB:$VB:127.0.77.2"; do
    IFS=: read -r n i a <<<"$ns"
    ip -n "$n" link set lo up && ip -n "$n" addr add "$a/24" dev "$i" && ip -n "$n" link set "$i" up &&
    ip netns exec "$n" sysctl -qw "net.ipv4.conf.$i.route_localnet=1" net.ipv4.conf.all.route_localnet=1 &&
    ip -n "$n" route del local 127.0.0.0/8 dev lo table local &&
    { ip -n "$n" route add local 127.0.0.1 dev lo table local 2>/dev/null || true; } || return 1
  done
}
setup 2>"$T/ns.err" || skip "cannot set up the veth link between namespaces: $(head -n 1 "$T/ns.err")"

# The rsh agent: host name -> namespace, logged so the test sees both hosts used.
cat >"$T/agent.sh" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in
  127.0.77.1) ns=$NA; name=hone-host-a ;;
  127.0.77.2) ns=$NB; name=hone-host-b ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
echo "\$host" >>"$T/agent.log"
exec ip netns exec \$ns unshare --uts sh -c "hostname \$name; \$*"
AGENT
chmod +x "$T/agent.sh"
NET=(--host 127.0.77.1:1,127.0.77.2:1 --mca plm_rsh_agent "$T/agent.sh" --mca btl tcp,self
     --mca btl_tcp_if_include 127.0.77.0/24 --mca oob_tcp_if_include 127.0.77.0/24
     --mca oob_tcp_keepalive_time 1 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 2)
in_a() { ip netns exec "$NA" unshare --uts sh -c 'hostname hone-host-a; exec "$@"' sh "$@"; }

run one 0 -- "$HONE" "${TRAIN[@]}" --epochs 1 --batch 32 -o "$T/one.onnx"
run hosts 0 -- in_a "${MPIRUN[@]}" "${NET[@]}" -np 2 "$HONE_MPI" "${TRAIN[@]}" --epochs 1 \
  --batch 32 -o "$T/hosts.onnx"
grep -q 127.0.77.2 "$T/agent.log" 2>/dev/null && ok || bad "no daemon was started on the second host"
same_weights "2 hosts x 16 = 1 process x 32" "$T/one.onnx" "$T/hosts.onnx" 1e-4

# Broken connection: the link goes down once epoch 1's checkpoint is written.
RUN=("${TRAIN[@]}" --epochs 3 --batch 32 --checkpoint "$T/ck")
( for _ in $(seq 2400); do [ -f "$T/ck/checkpoint.hone" ] && break; sleep 0.05; done
  ip -n "$NB" link set "$VB" down ) &
cutter=$!
run cut fail -- timeout -k 5 180 bash -c "$(declare -f in_a); NA=$NA; in_a \"\$@\"" sh \
  "${MPIRUN[@]}" "${NET[@]}" -np 2 "$HONE_MPI" "${RUN[@]}" -o "$T/cut.onnx"
wait "$cutter"
[ ! -e "$T/cut.onnx" ] && ok || bad "the cut run left $T/cut.onnx"
has cut err "rank 0 of 2: stopped by mpirun because another rank failed or its connection broke"
grep -q "lost communication" "$T/cut.err" && echo "mpirun: $(grep -m1 'lost communication' "$T/cut.err")"
# the link back up: resume finishes the run
ip -n "$NB" link set "$VB" up
run resumed 0 -- in_a "${MPIRUN[@]}" "${NET[@]}" -np 2 "$HONE_MPI" "${RUN[@]}" --resume \
  -o "$T/resumed.onnx"
has resumed out "resumed_after_epoch"
finish
