#!/usr/bin/env node
// Renders deploy/haproxy/haproxy.cfg.template for a list of nodes, on stdout.
//
//   node deploy/haproxy/render.mjs --bind 127.0.0.1:8080 --stats-socket /tmp/h.sock \
//     --node a=127.0.0.1:9001/9101 --node b=127.0.0.1:9002/9102
//   node deploy/haproxy/render.mjs --kubernetes 3 [--namespace mdocker] [--cluster-domain cluster.local]
//
// --node ID=HOST:PORT/AGENT_PORT: a node id (a DNS label, the node's --node-id), where it
// serves and its --agent-port. --kubernetes N: the StatefulSet's pods mdocker-0…N-1
// through the headless Service (deploy/kubernetes), ports 8080 and 8081.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const NODE_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const TEMPLATE = fileURLToPath(new URL('./haproxy.cfg.template', import.meta.url));

export function render({ bind, statsSocket, nodes }) {
  if (nodes.length === 0) throw new Error('at least one --node');
  for (const node of nodes) {
    if (!NODE_ID.test(node.id)) throw new Error(`node id ${JSON.stringify(node.id)} is not a DNS label`);
    if (!/^[A-Za-z0-9.-]+:\d+$/.test(node.address)) throw new Error(`address ${node.address}: HOST:PORT`);
    if (!Number.isInteger(node.agentPort) || node.agentPort < 1 || node.agentPort > 65535)
      throw new Error(`agent port of ${node.id}`);
  }
  const template = readFileSync(TEMPLATE, 'utf8');
  const blocks = template.replace(/^#@each-node\n([\s\S]*?)^#@end\n/gm, (_all, block) =>
    nodes
      .map((node) =>
        block
          .replaceAll('@NODE@', node.id)
          .replaceAll('@ADDRESS@', node.address)
          .replaceAll('@AGENT_PORT@', String(node.agentPort)),
      )
      .join(''),
  );
  return blocks.replaceAll('@BIND@', bind).replaceAll('@STATS_SOCKET@', statsSocket);
}

export function kubernetesNodes(count, namespace = 'mdocker', clusterDomain = 'cluster.local') {
  return Array.from({ length: count }, (_, i) => ({
    id: `mdocker-${i}`,
    // HAProxy's resolver does not use the search list: the full name of the pod.
    address: `mdocker-${i}.mdocker.${namespace}.svc.${clusterDomain}:8080`,
    agentPort: 8081,
  }));
}

function main(argv) {
  const options = { bind: ':8080', statsSocket: '/var/run/haproxy-admin.sock', nodes: [] };
  let kubernetes = null;
  let namespace = 'mdocker';
  let clusterDomain = 'cluster.local';
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--bind':
        options.bind = value;
        i++;
        break;
      case '--stats-socket':
        options.statsSocket = value;
        i++;
        break;
      case '--node': {
        const match = /^([^=]+)=([^/]+)\/(\d+)$/.exec(value ?? '');
        if (!match) throw new Error(`--node ${value}: ID=HOST:PORT/AGENT_PORT`);
        options.nodes.push({ id: match[1], address: match[2], agentPort: Number(match[3]) });
        i++;
        break;
      }
      case '--kubernetes':
        kubernetes = Number(value);
        i++;
        break;
      case '--namespace':
        namespace = value;
        i++;
        break;
      case '--cluster-domain':
        clusterDomain = value;
        i++;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (kubernetes !== null) {
    options.nodes = kubernetesNodes(kubernetes, namespace, clusterDomain);
    options.statsSocket = '/tmp/haproxy-admin.sock';
  }
  process.stdout.write(render(options));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`render.mjs: ${err.message}\n`);
    process.exit(2);
  }
}
