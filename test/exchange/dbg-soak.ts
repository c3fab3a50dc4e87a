import { installedChildren, peerConfig, SITE_A, SITE_B, Sim } from './fixtures.js';

const seed = Number(process.argv[2]);
const sim = new Sim(`soak-${seed}`, {
  conditions: { loss: 0.2, duplicate: 0.2, reorder: 0.2, reorderDelayMs: 300, delayMs: 10, jitterMs: 20 },
});
const common = {
  children: 2,
  childRekeyMs: 5 * 60_000,
  ikeRekeyMs: 15 * 60_000,
  jitterMs: 60_000,
  dpdMs: 30_000,
  retransmit: { timeoutMs: 2000, base: 1.5, tries: 6 },
};
const a = sim.add(SITE_A, [peerConfig(SITE_A, SITE_B, { ...common, dpdAction: 'restart' })]);
const b = sim.add(SITE_B, [peerConfig(SITE_B, SITE_A, { ...common, startAction: 'none', dpdAction: 'clear' })]);
const log: string[] = [];
const dup: Record<string, number> = {};
for (const n of [a, b])
  n.engine.on((e: any) =>
    log.push(
      `${sim.clock.now().toFixed(0)} ${n.site.name} ${e.type} ${e.sa?.child ?? e.child ?? ''} ${e.sa?.childUid ?? ''} rekeyOf=${e.rekeyOf ?? ''} ${e.reason ?? ''} ${e.failure?.code ?? ''}`,
    ),
  );
a.engine.initiate(a.configs.configs[0]!);
for (let t = 0; t < 7200; t++) {
  await sim.run(1000);
  for (const n of [a, b]) {
    const by = new Map<string, number>();
    for (const key of Object.keys(dup))
      if (key.startsWith(n.site.name) && !by.has(key)) {
      }
    for (const s of n.engine.ikeSas())
      for (const c of s.children)
        if (c.state === 'installed' && !c.replacedBy) by.set(c.config.name, (by.get(c.config.name) ?? 0) + 1);
    for (const [k, v] of by)
      if (v > 1 && (dup[n.site.name + k] = (dup[n.site.name + k] ?? 0) + 1) > 120) {
        console.log(`t=${sim.clock.now()} ${n.site.name} has ${v} installed ${k}`);
        for (const s of n.engine.ikeSas())
          for (const c of s.children)
            console.log(' ', s.uid, s.state, c.config.name, c.uid, c.state, c.createdByUs, c.replacedBy?.uid);
        console.log(log.slice(-25).join('\n'));
        process.exit(0);
      }
  }
}
