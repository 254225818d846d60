#!/bin/sh
# /usr/local/bin/docker in the nesting image: the real client
# (/usr/bin/docker), except that swarm services that would need the
# kernel's IPVS are refused with the reason and what works instead. IPVS
# refuses every user namespace but the host's, so the routing mesh
# (publishing through the ingress network) and service virtual IPs
# (--endpoint-mode vip, the default) would be created but never answer.
if [ "$1" = service ] && { [ "$2" = create ] || [ "$2" = update ]; }; then
  ingress= network= dnsrr= prev=
  for arg in "$@"; do
    case "$prev" in
      -p|--publish|--publish-add)
        case "$arg" in *mode=host*) ;; *) ingress=1 ;; esac ;;
      --network|--network-add) network=1 ;;
      --endpoint-mode) [ "$arg" = dnsrr ] && dnsrr=1 ;;
    esac
    case "$arg" in
      --publish=*|--publish-add=*|-p?*)
        case "$arg" in *mode=host*) ;; *) ingress=1 ;; esac ;;
      --network=*|--network-add=*) network=1 ;;
      --endpoint-mode=dnsrr) dnsrr=1 ;;
    esac
    prev=$arg
  done
  if [ -n "$ingress" ]; then
    cat >&2 <<'EOF'
docker: this playground cannot publish a service through swarm's routing mesh.
The ingress network needs the kernel's IPVS load balancer, which the kernel
allows only on the host itself, never inside an unprivileged instance.
Publish the port on each node that runs a task instead, for example:
  docker service create --endpoint-mode dnsrr \
    --publish mode=host,published=8080,target=80 nginx
EOF
    exit 1
  fi
  if [ -n "$network" ] && [ -z "$dnsrr" ] && [ "$2" = create ]; then
    cat >&2 <<'EOF'
docker: this playground cannot give a service a virtual IP (--endpoint-mode vip,
the default): it needs the kernel's IPVS load balancer, which the kernel allows
only on the host itself, never inside an unprivileged instance.
Add --endpoint-mode dnsrr: the service's name then resolves to the address of
each of its tasks, and clients spread over them.
EOF
    exit 1
  fi
fi
exec /usr/bin/docker "$@"
