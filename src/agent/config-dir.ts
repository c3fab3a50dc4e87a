/**
 * Standalone mode: the agent's desired state from a directory of Kubernetes-style YAML, exactly as it would be
 * applied to a cluster: IPsecTunnel and IPsecMesh objects, v1 Secrets with the pre-shared keys or certificates
 * (kubernetes.io/tls: tls.crt, tls.key, ca.crt), and one
 * AgentSettings object. A bad document is reported with its file, field and problem and skipped; the rest is used.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { NodeTunnel } from '../api/nodeconfig.js';
import { IPsecMesh, IPsecTunnel, safeParseWith } from '../api/resources.js';
import { meshTunnels, renderNodeTunnel, reqidFor, secretKeyFor } from '../operator/plan.js';
import { AgentSettings } from './settings.js';

export interface ConfigProblem {
  file: string;
  /** Document index in the file (1-based) and object, when known. */
  where: string;
  path: string;
  message: string;
}

export interface DesiredState {
  settings: AgentSettings | undefined;
  tunnels: NodeTunnel[];
  /** Key material by node-secret key (`namespace.name.psk`, `namespace.name.tls.crt|tls.key|ca.crt`). */
  secrets: Map<string, Uint8Array>;
  problems: ConfigProblem[];
}

interface SecretObject {
  namespace: string;
  name: string;
  data: Map<string, Uint8Array>;
}

function secretOf(
  obj: Record<string, unknown>,
  file: string,
  where: string,
  problems: ConfigProblem[],
): SecretObject | undefined {
  const meta = (obj.metadata ?? {}) as { name?: unknown; namespace?: unknown };
  if (typeof meta.name !== 'string' || meta.name === '') {
    problems.push({ file, where, path: 'metadata.name', message: 'a Secret needs a name' });
    return undefined;
  }
  const data = new Map<string, Uint8Array>();
  const raw = (obj.data ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/=\s]*$/.test(v)) {
      problems.push({ file, where, path: `data.${k}`, message: 'must be base64' });
      continue;
    }
    data.set(k, Uint8Array.from(Buffer.from(v, 'base64')));
  }
  for (const [k, v] of Object.entries((obj.stringData ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'string') {
      problems.push({ file, where, path: `stringData.${k}`, message: 'must be a string' });
      continue;
    }
    data.set(k, new TextEncoder().encode(v));
  }
  return { namespace: typeof meta.namespace === 'string' ? meta.namespace : 'default', name: meta.name, data };
}

/** Read every *.yaml / *.yml / *.json file of `dir` (not recursive). */
export function loadConfigDir(dir: string): DesiredState {
  const problems: ConfigProblem[] = [];
  let settings: AgentSettings | undefined;
  const tunnels: {
    ns: string;
    name: string;
    uid: string;
    generation: number;
    spec: IPsecTunnel['spec'];
    file: string;
    where: string;
  }[] = [];
  const meshes: { obj: IPsecMesh; file: string; where: string }[] = [];
  const secrets: SecretObject[] = [];
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort();
  } catch (e) {
    return {
      settings,
      tunnels: [],
      secrets: new Map(),
      problems: [{ file: dir, where: '', path: '', message: `cannot read directory: ${(e as Error).message}` }],
    };
  }
  for (const f of files) {
    const path = join(dir, f);
    let text: string;
    try {
      if (!statSync(path).isFile()) continue;
      text = readFileSync(path, 'utf8');
    } catch (e) {
      problems.push({ file: f, where: '', path: '', message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    const docs = parseAllDocuments(text);
    docs.forEach((d, i) => {
      const where = `document ${i + 1}`;
      if (d.errors.length > 0) {
        problems.push({ file: f, where, path: '', message: `YAML: ${d.errors[0]!.message.split('\n')[0]}` });
        return;
      }
      const obj = d.toJS() as Record<string, unknown> | null;
      if (obj === null || obj === undefined) return;
      if (typeof obj !== 'object' || Array.isArray(obj)) {
        problems.push({ file: f, where, path: '', message: 'not an object' });
        return;
      }
      const kind = obj.kind;
      const name = (obj.metadata as { name?: string } | undefined)?.name;
      const label = `${where} (${String(kind)}${name ? ` ${name}` : ''})`;
      if (kind === 'AgentSettings') {
        const r = safeParseWith(AgentSettings, obj, 'AgentSettings');
        if (!r.ok)
          for (const e of r.error.errors) problems.push({ file: f, where: label, path: e.path, message: e.message });
        else if (settings)
          problems.push({ file: f, where: label, path: '', message: 'a second AgentSettings object is ignored' });
        else settings = r.value;
      } else if (kind === 'Secret') {
        const s = secretOf(obj, f, label, problems);
        if (s) secrets.push(s);
      } else if (kind === 'IPsecTunnel') {
        const r = safeParseWith(IPsecTunnel, obj, 'IPsecTunnel');
        if (!r.ok) {
          for (const e of r.error.errors) problems.push({ file: f, where: label, path: e.path, message: e.message });
          return;
        }
        const t = r.value;
        const ns = t.metadata.namespace ?? 'default';
        tunnels.push({
          ns,
          name: t.metadata.name,
          uid: `${ns}/${t.metadata.name}`,
          generation: 1,
          spec: t.spec,
          file: f,
          where: label,
        });
      } else if (kind === 'IPsecMesh') {
        const r = safeParseWith(IPsecMesh, obj, 'IPsecMesh');
        if (!r.ok) {
          for (const e of r.error.errors) problems.push({ file: f, where: label, path: e.path, message: e.message });
          return;
        }
        meshes.push({ obj: r.value, file: f, where: label });
      } else {
        problems.push({
          file: f,
          where: label,
          path: 'kind',
          message: 'must be IPsecTunnel, IPsecMesh, Secret or AgentSettings',
        });
      }
    });
  }
  if (!settings)
    problems.push({ file: dir, where: '', path: '', message: 'no AgentSettings object found (agent.yaml)' });
  for (const m of meshes) {
    const ns = m.obj.metadata.namespace ?? 'default';
    if (!settings?.site) {
      problems.push({ file: m.file, where: m.where, path: '', message: 'an IPsecMesh needs `site` in AgentSettings' });
      continue;
    }
    const plan = meshTunnels(m.obj.metadata.name, m.obj.spec, settings.site);
    if (!plan.ok) {
      problems.push({ file: m.file, where: m.where, path: 'spec.sites', message: plan.problem.message });
      continue;
    }
    for (const t of plan.tunnels) {
      tunnels.push({
        ns,
        name: t.name,
        uid: `${ns}/${t.name}`,
        generation: 1,
        spec: t.spec,
        file: m.file,
        where: m.where,
      });
    }
  }
  // Secrets: the node-secret keys the rendered tunnels refer to.
  const secretMap = new Map<string, Uint8Array>();
  const rendered: NodeTunnel[] = [];
  const seen = new Set<string>();
  for (const t of tunnels) {
    const key = `${t.ns}/${t.name}`;
    if (seen.has(key)) {
      problems.push({
        file: t.file,
        where: t.where,
        path: 'metadata.name',
        message: `tunnel ${key} is defined twice; the first wins`,
      });
      continue;
    }
    seen.add(key);
    const address = t.spec.local.address ?? settings?.addresses[0];
    const nt = renderNodeTunnel(
      { namespace: t.ns, name: t.name, uid: t.uid, generation: t.generation, spec: t.spec },
      { name: settings?.nodeName ?? 'standalone', labels: {}, alive: true, ...(address ? { address } : {}) },
    );
    if ('reason' in nt) {
      problems.push({ file: t.file, where: t.where, path: 'spec.local.address', message: nt.message });
      continue;
    }
    nt.reqid = reqidFor(t.uid);
    // Copy the key material under the node-secret keys, as the operator does for the node Secret.
    const copy = (
      ref: { name: string; key: string },
      item: 'psk' | 'tls.crt' | 'tls.key' | 'ca.crt',
      path: string,
    ): void => {
      const s = secrets.find((x) => x.namespace === t.ns && x.name === ref.name);
      const value = s?.data.get(ref.key);
      if (value) secretMap.set(secretKeyFor(t.ns, t.name, item), value);
      else {
        problems.push({
          file: t.file,
          where: t.where,
          path,
          message: s
            ? `Secret ${t.ns}/${ref.name} has no key '${ref.key}'`
            : `Secret ${t.ns}/${ref.name} not found in the config directory`,
        });
      }
    };
    if (t.spec.auth.psk) copy(t.spec.auth.psk.secretRef, 'psk', 'spec.auth.psk.secretRef');
    const cert = t.spec.auth.certificate;
    if (cert) {
      // A kubernetes.io/tls Secret (cert-manager's layout): tls.crt (chain, ours first), tls.key, ca.crt; the
      // remote CA may come from another Secret (spec.auth.certificate.remoteCA).
      const name = cert.secretRef.name;
      copy({ name, key: 'tls.crt' }, 'tls.crt', 'spec.auth.certificate.secretRef');
      copy({ name, key: 'tls.key' }, 'tls.key', 'spec.auth.certificate.secretRef');
      copy(
        cert.remoteCA?.secretRef ?? { name, key: 'ca.crt' },
        'ca.crt',
        cert.remoteCA ? 'spec.auth.certificate.remoteCA.secretRef' : 'spec.auth.certificate.secretRef',
      );
    }
    rendered.push(nt);
  }
  return { settings, tunnels: rendered, secrets: secretMap, problems };
}
