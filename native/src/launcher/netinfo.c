/* `mdocker-init netinfo NETNS_PATH...`: what each network namespace holds, as `ip -s
 * link`, `ip -4 addr` and `ip -4 route` would show it, read with rtnetlink dumps and
 * printed as one JSON array, one object per namespace in the order given.
 *
 * A process of its own because the answer lies in namespaces the server is not in: a
 * container's (/proc/<pid>/net has counters and routes, but no MAC, MTU, link state or
 * veth peer) and a network's, which no process lives in and which only setns() reaches.
 * setns() in the server would move one of Node's threads into a namespace a container
 * controls; this single-threaded process moves itself and exits. It joins no other
 * namespace, and no container process can see it (they have PID namespaces of their
 * own), so it needs no sealed copy of itself as run and exec do.
 *
 * The C side returns the kernel's numbers (flags, scope, protocol, operstate); the
 * runtime (server/src/runtime/network-info.ts) names them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "launcher.h"
#include "netinfo.h"

/* A container may make interfaces and routes in its own namespace (with NET_ADMIN in
 * its user namespace): what is printed stops here, and says it was cut. */
#define MD_NETINFO_MAX_LINKS 64
#define MD_NETINFO_MAX_ADDRS 256
#define MD_NETINFO_MAX_ROUTES 256
#define MD_NETINFO_RECV_BUF 65536

struct netinfo_out
{
  FILE *out;
  int count;
  int max;
  int truncated;
};

/* A JSON string. Interface names may hold any byte but '/', ':' and spaces
 * (dev_valid_name): quotes, backslashes, control bytes and bytes past ASCII are
 * escaped, the last as \u00XX, so the output is always valid UTF-8. */
static void
put_json_string (FILE *out, const char *s, size_t max_len)
{
  size_t i;

  fputc ('"', out);
  for (i = 0; i < max_len && s[i] != '\0'; i++)
    {
      unsigned char c = (unsigned char) s[i];
      if (c == '"' || c == '\\')
        fprintf (out, "\\%c", c);
      else if (c < 0x20 || c >= 0x7f)
        fprintf (out, "\\u%04x", c);
      else
        fputc (c, out);
    }
  fputc ('"', out);
}

static void
put_ipv4 (FILE *out, const void *addr)
{
  char text[INET_ADDRSTRLEN];

  if (inet_ntop (AF_INET, addr, text, sizeof (text)) == NULL)
    fputs ("null", out);
  else
    fprintf (out, "\"%s\"", text);
}

/* ,"key":N, or ,"key":null for a value the kernel did not give (negative here). */
static void
put_optional (FILE *out, const char *key, long long value)
{
  if (value < 0)
    fprintf (out, ",\"%s\":null", key);
  else
    fprintf (out, ",\"%s\":%lld", key, value);
}

static uint32_t
rta_u32 (const struct rtattr *rta)
{
  uint32_t v = 0;
  if (RTA_PAYLOAD (rta) >= sizeof (v))
    memcpy (&v, RTA_DATA (rta), sizeof (v));
  return v;
}

static void
netinfo_link (const struct nlmsghdr *h, struct netinfo_out *o)
{
  const struct ifinfomsg *ifi = NLMSG_DATA (h);
  const struct rtattr *a;
  int len = (int) IFLA_PAYLOAD (h);
  const struct rtattr *name = NULL, *mac = NULL, *kind = NULL;
  struct rtnl_link_stats64 stats64;
  int have_stats = 0;
  long long master = -1, link = -1, link_netnsid = -1;
  unsigned mtu = 0, operstate = 0;

  memset (&stats64, 0, sizeof (stats64));
  for (a = IFLA_RTA (ifi); RTA_OK (a, len); a = RTA_NEXT (a, len))
    switch (a->rta_type)
      {
      case IFLA_IFNAME:
        name = a;
        break;
      case IFLA_ADDRESS:
        mac = a;
        break;
      case IFLA_MTU:
        mtu = rta_u32 (a);
        break;
      case IFLA_OPERSTATE:
        if (RTA_PAYLOAD (a) >= 1)
          operstate = *(const unsigned char *) RTA_DATA (a);
        break;
      case IFLA_MASTER:
        master = rta_u32 (a);
        break;
      case IFLA_LINK:
        link = rta_u32 (a);
        break;
      case IFLA_LINK_NETNSID:
        link_netnsid = (int32_t) rta_u32 (a);
        break;
      case IFLA_STATS64:
        /* Attributes are 4-byte aligned only: copied, not cast. */
        if (RTA_PAYLOAD (a) >= sizeof (stats64))
          {
            memcpy (&stats64, RTA_DATA (a), sizeof (stats64));
            have_stats = 1;
          }
        break;
      case IFLA_LINKINFO:
        {
          const struct rtattr *n;
          int nlen = (int) RTA_PAYLOAD (a);
          for (n = RTA_DATA (a); RTA_OK (n, nlen); n = RTA_NEXT (n, nlen))
            if (n->rta_type == IFLA_INFO_KIND)
              kind = n;
          break;
        }
      default:
        break;
      }
  if (name == NULL)
    return;
  if (o->count >= o->max)
    {
      o->truncated = 1;
      return;
    }
  fprintf (o->out, "%s{\"index\":%d,\"name\":", o->count ? "," : "", ifi->ifi_index);
  put_json_string (o->out, RTA_DATA (name), RTA_PAYLOAD (name));
  fputs (",\"kind\":", o->out);
  if (kind)
    put_json_string (o->out, RTA_DATA (kind), RTA_PAYLOAD (kind));
  else
    fputs ("null", o->out);
  fprintf (o->out, ",\"flags\":%u,\"mtu\":%u,\"operstate\":%u,\"mac\":", ifi->ifi_flags, mtu, operstate);
  if (mac && RTA_PAYLOAD (mac) == 6)
    {
      const unsigned char *m = RTA_DATA (mac);
      fprintf (o->out, "\"%02x:%02x:%02x:%02x:%02x:%02x\"", m[0], m[1], m[2], m[3], m[4], m[5]);
    }
  else
    fputs ("null", o->out);
  put_optional (o->out, "master", master);
  put_optional (o->out, "link", link);
  put_optional (o->out, "linkNetnsid", link_netnsid);
  if (have_stats)
    fprintf (o->out, ",\"rxBytes\":%llu,\"rxPackets\":%llu,\"txBytes\":%llu,\"txPackets\":%llu}",
             (unsigned long long) stats64.rx_bytes, (unsigned long long) stats64.rx_packets,
             (unsigned long long) stats64.tx_bytes, (unsigned long long) stats64.tx_packets);
  else
    fputs (",\"rxBytes\":0,\"rxPackets\":0,\"txBytes\":0,\"txPackets\":0}", o->out);
  o->count++;
}

static void
netinfo_addr (const struct nlmsghdr *h, struct netinfo_out *o)
{
  const struct ifaddrmsg *ifa = NLMSG_DATA (h);
  const struct rtattr *a, *local = NULL, *address = NULL;
  int len = (int) IFA_PAYLOAD (h);

  if (ifa->ifa_family != AF_INET)
    return;
  for (a = IFA_RTA (ifa); RTA_OK (a, len); a = RTA_NEXT (a, len))
    if (a->rta_type == IFA_LOCAL && RTA_PAYLOAD (a) == 4)
      local = a;
    else if (a->rta_type == IFA_ADDRESS && RTA_PAYLOAD (a) == 4)
      address = a;
  /* IFA_LOCAL is the interface's own address; IFA_ADDRESS is the far end's on a
   * point-to-point link, and the same as IFA_LOCAL elsewhere. */
  if (local == NULL)
    local = address;
  if (local == NULL)
    return;
  if (o->count >= o->max)
    {
      o->truncated = 1;
      return;
    }
  fprintf (o->out, "%s{\"index\":%u,\"address\":", o->count ? "," : "", ifa->ifa_index);
  put_ipv4 (o->out, RTA_DATA (local));
  fprintf (o->out, ",\"prefix\":%u,\"scope\":%u}", ifa->ifa_prefixlen, ifa->ifa_scope);
  o->count++;
}

static void
netinfo_route (const struct nlmsghdr *h, struct netinfo_out *o)
{
  const struct rtmsg *rtm = NLMSG_DATA (h);
  const struct rtattr *a, *dst = NULL, *gateway = NULL, *prefsrc = NULL;
  int len = (int) RTM_PAYLOAD (h);
  unsigned table = rtm->rtm_table;
  long long oif = -1, metric = -1;

  if (rtm->rtm_family != AF_INET)
    return;
  for (a = RTM_RTA (rtm); RTA_OK (a, len); a = RTA_NEXT (a, len))
    switch (a->rta_type)
      {
      case RTA_TABLE:
        table = rta_u32 (a);
        break;
      case RTA_DST:
        dst = RTA_PAYLOAD (a) == 4 ? a : NULL;
        break;
      case RTA_GATEWAY:
        gateway = RTA_PAYLOAD (a) == 4 ? a : NULL;
        break;
      case RTA_PREFSRC:
        prefsrc = RTA_PAYLOAD (a) == 4 ? a : NULL;
        break;
      case RTA_OIF:
        oif = rta_u32 (a);
        break;
      case RTA_PRIORITY:
        metric = rta_u32 (a);
        break;
      default:
        break;
      }
  /* The main table, as `ip route`: the local table holds the kernel's routes to the
   * namespace's own and broadcast addresses. */
  if (table != RT_TABLE_MAIN)
    return;
  if (o->count >= o->max)
    {
      o->truncated = 1;
      return;
    }
  fprintf (o->out, "%s{\"destination\":", o->count ? "," : "");
  if (dst)
    put_ipv4 (o->out, RTA_DATA (dst));
  else
    fputs ("\"0.0.0.0\"", o->out);
  fprintf (o->out, ",\"prefix\":%u,\"gateway\":", rtm->rtm_dst_len);
  if (gateway)
    put_ipv4 (o->out, RTA_DATA (gateway));
  else
    fputs ("null", o->out);
  fputs (",\"source\":", o->out);
  if (prefsrc)
    put_ipv4 (o->out, RTA_DATA (prefsrc));
  else
    fputs ("null", o->out);
  put_optional (o->out, "oif", oif);
  put_optional (o->out, "metric", metric);
  fprintf (o->out, ",\"scope\":%u,\"protocol\":%u,\"type\":%u}", rtm->rtm_scope, rtm->rtm_protocol, rtm->rtm_type);
  o->count++;
}

/* One dump request (RTM_GETLINK, RTM_GETADDR or RTM_GETROUTE) and each of its answers
 * through each, until NLMSG_DONE. */
static int
nl_dump (int fd, unsigned short type, size_t body_len, void (*each) (const struct nlmsghdr *, struct netinfo_out *),
         struct netinfo_out *o, md_error_t *err)
{
  struct
  {
    struct nlmsghdr hdr;
    /* ifinfomsg, ifaddrmsg or rtmsg: each starts with its family byte, zero here but
     * for addresses and routes, which are asked for IPv4. */
    char body[sizeof (struct ifinfomsg) > sizeof (struct rtmsg) ? sizeof (struct ifinfomsg) : sizeof (struct rtmsg)];
  } req;
  static const unsigned seq = 1;
  cleanup_free char *buf = NULL;

  memset (&req, 0, sizeof (req));
  req.hdr.nlmsg_len = (unsigned) NLMSG_LENGTH (body_len);
  req.hdr.nlmsg_type = type;
  req.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.hdr.nlmsg_seq = seq;
  if (type != RTM_GETLINK)
    req.body[0] = AF_INET;
  if (send (fd, &req, req.hdr.nlmsg_len, 0) < 0)
    return md_make_error (err, errno, "sendmsg", "rtnetlink: cannot ask for a dump");
  buf = malloc (MD_NETINFO_RECV_BUF);
  if (buf == NULL)
    return md_make_error (err, ENOMEM, "malloc", "rtnetlink: no memory for the dump");
  for (;;)
    {
      struct nlmsghdr *h;
      ssize_t n = recv (fd, buf, MD_NETINFO_RECV_BUF, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return md_make_error (err, errno, "recvmsg", "rtnetlink: cannot read the dump");
      if (n == 0)
        return md_make_error_code (err, MD_E_RUNTIME, "rtnetlink: the dump ended early");
      for (h = (struct nlmsghdr *) buf; NLMSG_OK (h, (unsigned) n); h = NLMSG_NEXT (h, n))
        {
          if (h->nlmsg_seq != seq)
            continue;
          if (h->nlmsg_type == NLMSG_DONE)
            return 0;
          if (h->nlmsg_type == NLMSG_ERROR)
            {
              const struct nlmsgerr *e = NLMSG_DATA (h);
              return md_make_error (err, e->error ? -e->error : EIO, "rtnetlink", "the dump failed");
            }
          if (h->nlmsg_flags & NLM_F_DUMP_INTR)
            /* The namespace changed during the dump: what was read is still each
             * interface's or route's own, only perhaps not all of them. */
            o->truncated = 1;
          each (h, o);
        }
    }
}

static int
netinfo_one (const char *netns_path, FILE *out, md_error_t *err)
{
  cleanup_close int ns = -1;
  cleanup_close int nl = -1;
  struct netinfo_out o = { .out = out };
  int truncated = 0;

  ns = open (netns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0)
    return md_make_error (err, errno, "open", "cannot open %s", netns_path);
  /* A network whose mount was removed leaves a plain file, or nothing. */
  if (ioctl (ns, NS_GET_NSTYPE) != CLONE_NEWNET)
    return md_make_error_code (err, MD_E_NOT_FOUND, "%s is not a network namespace", netns_path);
  if (setns (ns, CLONE_NEWNET) < 0)
    return md_make_error (err, errno, "setns", "cannot enter %s", netns_path);
  nl = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (nl < 0)
    return md_make_error (err, errno, "socket", "cannot open an rtnetlink socket");

  fputs ("{\"links\":[", out);
  o.max = MD_NETINFO_MAX_LINKS;
  if (nl_dump (nl, RTM_GETLINK, sizeof (struct ifinfomsg), netinfo_link, &o, err) < 0)
    return -1;
  truncated |= o.truncated;
  fputs ("],\"addresses\":[", out);
  o = (struct netinfo_out){ .out = out, .max = MD_NETINFO_MAX_ADDRS };
  if (nl_dump (nl, RTM_GETADDR, sizeof (struct ifaddrmsg), netinfo_addr, &o, err) < 0)
    return -1;
  truncated |= o.truncated;
  fputs ("],\"routes\":[", out);
  o = (struct netinfo_out){ .out = out, .max = MD_NETINFO_MAX_ROUTES };
  if (nl_dump (nl, RTM_GETROUTE, sizeof (struct rtmsg), netinfo_route, &o, err) < 0)
    return -1;
  truncated |= o.truncated;
  fprintf (out, "],\"truncated\":%s}", truncated ? "true" : "false");
  return 0;
}

int
md_netinfo (int n_paths, char **paths, md_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t text_len = 0;
  FILE *out;
  int i, ret = 0;

  /* Built in memory and written only when whole: a failure answers with the error's
   * JSON line alone. */
  out = open_memstream (&text, &text_len);
  if (out == NULL)
    return md_make_error (err, errno, "open_memstream", "cannot buffer the answer");
  fputc ('[', out);
  for (i = 0; i < n_paths && ret == 0; i++)
    {
      if (i > 0)
        fputc (',', out);
      ret = netinfo_one (paths[i], out, err);
    }
  fputs ("]\n", out);
  if (fclose (out) != 0 && ret == 0)
    ret = md_make_error (err, errno, "fclose", "cannot buffer the answer");
  if (ret < 0)
    return -1;
  if (md_write_all (STDOUT_FILENO, text, text_len) < 0)
    return md_make_error (err, errno, "write", "cannot write the answer");
  return 0;
}
