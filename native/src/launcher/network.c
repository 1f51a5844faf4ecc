/* Container networks over rtnetlink, with no `ip` binary. A network is a network
 * namespace of its own, held by an nsfs bind mount (--network-netns), with a bridge
 * "br0" in it and no link to the host's namespace: nothing in it can route to the host,
 * its services, another network or outside. A container joins with a veth pair: one end
 * on the bridge, in the network's namespace; the other, moved into the container's
 * namespace as eth0, with its address (whose prefix route is the only route).
 * The kernel removes the pair when either namespace dies, and the bridge and every veth
 * with the network's namespace once its mount is gone and no container is left in it.
 *
 * A network with egress has one more veth pair, its uplink: "up0" in the network's
 * namespace, the other end (a name of the runtime's choosing) in the host's, each with an
 * address of a /30. The bridge gets the gateway address, the network's namespace a
 * default route through the uplink and IPv4 forwarding, and the host's end forwarding on
 * that device alone. Which packets may pass, and their NAT, are nftables rules
 * (mdocker-nft, rules written by the runtime); without them nothing is forwarded. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "launcher.h"
#include "parse.h"

#define MD_BRIDGE_NAME "br0"
#define MD_UPLINK_NAME "up0"
#define MD_NL_BUF 1024

struct nl_req
{
  union
  {
    struct nlmsghdr hdr;
    char buf[MD_NL_BUF];
  } u;
};

static struct rtattr *
nl_tail (struct nl_req *req)
{
  return (struct rtattr *) (req->u.buf + NLMSG_ALIGN (req->u.hdr.nlmsg_len));
}

static int
nl_add_attr (struct nl_req *req, unsigned short type, const void *data, size_t len)
{
  struct rtattr *rta = nl_tail (req);
  size_t total = NLMSG_ALIGN (req->u.hdr.nlmsg_len) + RTA_ALIGN (RTA_LENGTH (len));

  if (total > sizeof (req->u.buf))
    return -1;
  rta->rta_type = type;
  rta->rta_len = (unsigned short) RTA_LENGTH (len);
  if (len)
    memcpy (RTA_DATA (rta), data, len);
  req->u.hdr.nlmsg_len = (unsigned) total;
  return 0;
}

/* Opens a nested attribute; nl_end_nest fixes its length once its children are in. */
static struct rtattr *
nl_begin_nest (struct nl_req *req, unsigned short type)
{
  struct rtattr *nest = nl_tail (req);
  if (nl_add_attr (req, type, NULL, 0) < 0)
    return NULL;
  return nest;
}

static void
nl_end_nest (struct nl_req *req, struct rtattr *nest)
{
  nest->rta_len = (unsigned short) ((char *) nl_tail (req) - (char *) nest);
}

static void
nl_init (struct nl_req *req, unsigned short type, unsigned short flags, const void *body, size_t len)
{
  memset (req, 0, sizeof (*req));
  req->u.hdr.nlmsg_len = (unsigned) NLMSG_LENGTH (len);
  req->u.hdr.nlmsg_type = type;
  req->u.hdr.nlmsg_flags = (unsigned short) (NLM_F_REQUEST | NLM_F_ACK | flags);
  req->u.hdr.nlmsg_seq = 1;
  memcpy (NLMSG_DATA (&req->u.hdr), body, len);
}

/* A netlink socket of the calling thread's current network namespace. */
static int
nl_open (md_error_t *err)
{
  int fd = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0)
    return md_make_error (err, errno, "socket", "cannot open an rtnetlink socket");
  return fd;
}

/* Sends one request and waits for its acknowledgement. */
static int
nl_talk (int fd, struct nl_req *req, const char *what, md_error_t *err)
{
  char reply[MD_NL_BUF];
  struct nlmsghdr *h;
  ssize_t n;

  if (send (fd, req->u.buf, req->u.hdr.nlmsg_len, 0) < 0)
    return md_make_error (err, errno, "sendmsg", "rtnetlink: cannot %s", what);
  do
    n = recv (fd, reply, sizeof (reply), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return md_make_error (err, errno, "recvmsg", "rtnetlink: cannot %s", what);
  for (h = (struct nlmsghdr *) reply; NLMSG_OK (h, (unsigned) n); h = NLMSG_NEXT (h, n))
    if (h->nlmsg_type == NLMSG_ERROR)
      {
        const struct nlmsgerr *e = NLMSG_DATA (h);
        if (e->error == 0)
          return 0;
        return md_make_error (err, -e->error, "rtnetlink", "cannot %s", what);
      }
  return md_make_error_code (err, MD_E_RUNTIME, "rtnetlink: no answer to %s", what);
}

static int
link_up (int nl, int index, const char *name, md_error_t *err)
{
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
  struct nl_req req;
  char what[64];

  nl_init (&req, RTM_NEWLINK, 0, &ifi, sizeof (ifi));
  snprintf (what, sizeof (what), "bring %s up", name);
  return nl_talk (nl, &req, what, err);
}

static int
link_index (const char *name, md_error_t *err)
{
  unsigned index = if_nametoindex (name);
  if (index == 0)
    return md_make_error (err, errno, "if_nametoindex", "no interface %s", name);
  return (int) index;
}

/* "10.89.0.2/24" into an address and a prefix length. */
static int
parse_address (const char *option, const char *text, struct in_addr *addr, unsigned char *prefix, md_error_t *err)
{
  char buf[32];
  char *slash;
  unsigned long long n;

  if (strlen (text) >= sizeof (buf))
    goto bad;
  snprintf (buf, sizeof (buf), "%s", text);
  slash = strchr (buf, '/');
  if (slash == NULL)
    goto bad;
  *slash = '\0';
  if (inet_pton (AF_INET, buf, addr) != 1 || md_parse_ull (slash + 1, &n) < 0 || n < 8 || n > 30)
    goto bad;
  *prefix = (unsigned char) n;
  return 0;
bad:
  return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid %s %s: A.B.C.D/LEN", option, text);
}

/* Adds A.B.C.D/LEN (parsed by parse_address) to the interface. */
static int
add_address (int nl, int index, const struct in_addr *addr, unsigned char prefix, const char *what, md_error_t *err)
{
  struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = prefix, .ifa_index = (unsigned) index };
  struct nl_req req;

  nl_init (&req, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof (ifa));
  nl_add_attr (&req, IFA_LOCAL, addr, sizeof (*addr));
  nl_add_attr (&req, IFA_ADDRESS, addr, sizeof (*addr));
  return nl_talk (nl, &req, what, err);
}

/* The namespace's default route, through gateway (on a directly connected subnet). */
static int
add_default_route (int nl, const struct in_addr *gateway, md_error_t *err)
{
  struct rtmsg rtm = { .rtm_family = AF_INET,
                       .rtm_table = RT_TABLE_MAIN,
                       .rtm_protocol = RTPROT_BOOT,
                       .rtm_scope = RT_SCOPE_UNIVERSE,
                       .rtm_type = RTN_UNICAST };
  struct nl_req req;

  nl_init (&req, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof (rtm));
  nl_add_attr (&req, RTA_GATEWAY, gateway, sizeof (*gateway));
  return nl_talk (nl, &req, "add the default route", err);
}

/* A veth pair: name here, up (and on the bridge whose index is master, unless 0), in
 * one request: the kernel applies the flags and the master as it creates the device.
 * peer_name, in the namespace of peer_ns, stays down: the kernel configures the peer
 * before the pair is joined, when a veth cannot come up yet (ENOTCONN). */
static int
create_veth (int nl, const char *name, int master, const char *peer_name, int peer_ns, const char *what,
             md_error_t *err)
{
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
  struct ifinfomsg peer = { .ifi_family = AF_UNSPEC };
  struct rtattr *info, *data, *peer_attr;
  struct nl_req req;

  nl_init (&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof (ifi));
  nl_add_attr (&req, IFLA_IFNAME, name, strlen (name) + 1);
  if (master > 0)
    nl_add_attr (&req, IFLA_MASTER, &master, sizeof (master));
  info = nl_begin_nest (&req, IFLA_LINKINFO);
  nl_add_attr (&req, IFLA_INFO_KIND, "veth", sizeof ("veth"));
  data = nl_begin_nest (&req, IFLA_INFO_DATA);
  peer_attr = nl_begin_nest (&req, VETH_INFO_PEER);
  /* The peer's ifinfomsg, then its own attributes. */
  memcpy (RTA_DATA (peer_attr), &peer, sizeof (peer));
  req.u.hdr.nlmsg_len += (unsigned) NLMSG_ALIGN (sizeof (peer));
  nl_add_attr (&req, IFLA_IFNAME, peer_name, strlen (peer_name) + 1);
  if (nl_add_attr (&req, IFLA_NET_NS_FD, &peer_ns, sizeof (peer_ns)) < 0)
    return md_make_error_code (err, MD_E_RUNTIME, "rtnetlink request too long");
  nl_end_nest (&req, peer_attr);
  nl_end_nest (&req, data);
  nl_end_nest (&req, info);
  return nl_talk (nl, &req, what, err);
}

/* Writes "1" to a sysctl of the calling thread's network namespace. */
static int
sysctl_on (const char *path, md_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write (fd, "1", 1) != 1)
    return md_make_error (err, errno, "write", "cannot set %s", path);
  return 0;
}

static int
enter_netns (int fd, const char *what, md_error_t *err)
{
  if (setns (fd, CLONE_NEWNET) < 0)
    return md_make_error (err, errno, "setns", "cannot enter %s", what);
  return 0;
}

/* The uplink of a network with egress (see the top of the file). Runs in the network's
 * namespace, with host_ns the host's; returns there. */
static int
make_uplink (int nl, int bridge, const struct md_egress *egress, int host_ns, md_error_t *err)
{
  struct in_addr gateway, host_addr, peer_addr;
  unsigned char gateway_prefix, host_prefix, peer_prefix;
  cleanup_close int net_ns = -1;
  cleanup_close int host_nl = -1;
  char path[96];
  int index, ret;

  if (parse_address ("--gateway", egress->gateway, &gateway, &gateway_prefix, err) < 0
      || parse_address ("--uplink-host", egress->uplink_host, &host_addr, &host_prefix, err) < 0
      || parse_address ("--uplink-peer", egress->uplink_peer, &peer_addr, &peer_prefix, err) < 0)
    return -1;
  if (add_address (nl, bridge, &gateway, gateway_prefix, "give the bridge the gateway's address", err) < 0)
    return -1;
  if (create_veth (nl, MD_UPLINK_NAME, 0, egress->uplink, host_ns, "create the network's uplink", err) < 0)
    return -1;
  index = link_index (MD_UPLINK_NAME, err);
  if (index < 0 || add_address (nl, index, &peer_addr, peer_prefix, "give the uplink its address", err) < 0
      || add_default_route (nl, &host_addr, err) < 0 || sysctl_on ("/proc/sys/net/ipv4/ip_forward", err) < 0)
    return -1;

  /* The host's end, from the host's namespace. */
  net_ns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (net_ns < 0)
    return md_make_error (err, errno, "open", "/proc/self/ns/net");
  if (enter_netns (host_ns, "the host's network namespace", err) < 0)
    return -1;
  host_nl = nl_open (err);
  ret = host_nl < 0 ? -1 : 0;
  if (ret == 0 && (index = link_index (egress->uplink, err)) < 0)
    ret = -1;
  if (ret == 0)
    ret = add_address (host_nl, index, &host_addr, host_prefix, "give the uplink's host end its address", err);
  if (ret == 0)
    ret = link_up (host_nl, index, egress->uplink, err);
  if (ret == 0)
    {
      snprintf (path, sizeof (path), "/proc/sys/net/ipv4/conf/%s/forwarding", egress->uplink);
      ret = sysctl_on (path, err);
    }
  if (setns (net_ns, CLONE_NEWNET) < 0 && ret == 0)
    ret = md_make_error (err, errno, "setns", "cannot return to the network's namespace");
  return ret;
}

int
md_network_create (const char *netns_path, const struct md_egress *egress, md_error_t *err)
{
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
  cleanup_close int file = -1;
  cleanup_close int nl = -1;
  cleanup_close int host_ns = -1;
  struct rtattr *info;
  struct nl_req req;
  int index;

  if (egress
      && (strlen (egress->uplink) >= IFNAMSIZ || strchr (egress->uplink, '/') || egress->uplink[0] == '\0'
          || strcmp (egress->uplink, MD_UPLINK_NAME) == 0))
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --uplink %s: an interface name", egress->uplink);
  host_ns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (host_ns < 0)
    return md_make_error (err, errno, "open", "/proc/self/ns/net");
  /* The mount point, made here so that a name taken by someone else fails (O_EXCL). */
  file = open (netns_path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
  if (file < 0)
    return md_make_error (err, errno, "open", "cannot create %s", netns_path);
  /* This process is single-threaded and exits right after: it may move itself. */
  if (unshare (CLONE_NEWNET) < 0)
    {
      md_make_error (err, errno, "unshare", "cannot create the network's namespace");
      unlink (netns_path);
      return -1;
    }
  if (mount ("/proc/self/ns/net", netns_path, NULL, MS_BIND, NULL) < 0)
    {
      md_make_error (err, errno, "mount", "cannot hold the network's namespace at %s", netns_path);
      unlink (netns_path);
      return -1;
    }

  nl = nl_open (err);
  if (nl < 0)
    goto fail;
  nl_init (&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof (ifi));
  nl_add_attr (&req, IFLA_IFNAME, MD_BRIDGE_NAME, sizeof (MD_BRIDGE_NAME));
  info = nl_begin_nest (&req, IFLA_LINKINFO);
  nl_add_attr (&req, IFLA_INFO_KIND, "bridge", sizeof ("bridge"));
  nl_end_nest (&req, info);
  if (nl_talk (nl, &req, "create the bridge", err) < 0)
    goto fail;
  index = link_index (MD_BRIDGE_NAME, err);
  if (index < 0 || link_up (nl, index, MD_BRIDGE_NAME, err) < 0)
    goto fail;
  if (egress && make_uplink (nl, index, egress, host_ns, err) < 0)
    goto fail;
  return 0;

fail:
  md_network_remove (netns_path);
  return -1;
}

void
md_network_remove (const char *netns_path)
{
  /* Detached: a launcher cloning meanwhile may hold a copy of the mount for a moment. */
  umount2 (netns_path, MNT_DETACH);
  unlink (netns_path);
}

/* In the network's namespace: the pair, its container end created directly in the
 * container's namespace as eth0, our end on the bridge and up. */
static int
attach_to_bridge (const struct md_opts *opts, int child_ns, md_error_t *err)
{
  cleanup_close int nl = -1;
  char veth[IFNAMSIZ];
  int bridge;

  snprintf (veth, sizeof (veth), "md%.12s", opts->id ? opts->id : "container");
  nl = nl_open (err);
  if (nl < 0)
    return -1;
  bridge = link_index (MD_BRIDGE_NAME, err);
  if (bridge < 0)
    return -1;
  return create_veth (nl, veth, bridge, "eth0", child_ns, "create the container's veth pair on the bridge", err);
}

/* In the container's namespace: eth0's address (the kernel adds the subnet's route
 * with it) and eth0 up; a default route only on a network with egress (--network-gateway). */
static int
configure_eth0 (const struct md_opts *opts, md_error_t *err)
{
  cleanup_close int nl = -1;
  struct in_addr addr, gateway;
  unsigned char prefix = 0;
  int index;

  if (parse_address ("--network-address", opts->network_address, &addr, &prefix, err) < 0)
    return -1;
  if (opts->network_gateway && inet_pton (AF_INET, opts->network_gateway, &gateway) != 1)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --network-gateway %s: A.B.C.D",
                               opts->network_gateway);
  nl = nl_open (err);
  if (nl < 0)
    return -1;
  index = link_index ("eth0", err);
  if (index < 0 || add_address (nl, index, &addr, prefix, "give eth0 its address", err) < 0
      || link_up (nl, index, "eth0", err) < 0)
    return -1;
  return opts->network_gateway ? add_default_route (nl, &gateway, err) : 0;
}

/* A new network namespace's lo is down. */
static int
loopback_up (md_error_t *err)
{
  struct ifreq ifr;
  cleanup_close int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return md_make_error (err, errno, "socket", "cannot configure the loopback interface");
  memset (&ifr, 0, sizeof (ifr));
  snprintf (ifr.ifr_name, sizeof (ifr.ifr_name), "lo");
  if (ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    return md_make_error (err, errno, "ioctl", "SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    return md_make_error (err, errno, "ioctl", "SIOCSIFFLAGS lo");
  return 0;
}

int
md_network_attach (const struct md_opts *opts, pid_t child, md_error_t *err)
{
  cleanup_close int own_ns = -1;
  cleanup_close int network_ns = -1;
  cleanup_close int child_ns = -1;
  char path[64];
  int ret = 0;

  own_ns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (own_ns < 0)
    return md_make_error (err, errno, "open", "/proc/self/ns/net");
  if (opts->network_netns)
    {
      network_ns = open (opts->network_netns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (network_ns < 0)
        return md_make_error (err, errno, "open", "cannot open the network's namespace %s", opts->network_netns);
      /* A network whose mount was removed leaves a plain file, or nothing: never join that. */
      if (ioctl (network_ns, NS_GET_NSTYPE) != CLONE_NEWNET)
        return md_make_error_code (err, MD_E_NOT_FOUND, "%s is not a network namespace (the network is gone)",
                                   opts->network_netns);
    }
  snprintf (path, sizeof (path), "/proc/%d/ns/net", (int) child);
  child_ns = open (path, O_RDONLY | O_CLOEXEC);
  if (child_ns < 0)
    return md_make_error (err, errno, "open", "cannot open %s", path);

  /* setns moves only this thread; the launcher is single-threaded, and goes back to its
   * own namespace whatever happens. */
  if (network_ns >= 0)
    {
      if (enter_netns (network_ns, "the network's namespace", err) < 0)
        return -1;
      ret = attach_to_bridge (opts, child_ns, err);
    }
  if (ret == 0 && (ret = enter_netns (child_ns, "the container's network namespace", err)) == 0)
    {
      ret = loopback_up (err);
      if (ret == 0 && network_ns >= 0)
        ret = configure_eth0 (opts, err);
    }
  if (setns (own_ns, CLONE_NEWNET) < 0 && ret == 0)
    ret = md_make_error (err, errno, "setns", "cannot return to the launcher's network namespace");
  return ret;
}
