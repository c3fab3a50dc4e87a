/**
 * `--dataplane=none`: a kernel that keeps SAs and policies in memory without keys, for diagnosis and benchmarks
 * (negotiate and report only; no packet is protected).
 */
import type { KernelIpsec, KernelPolicy, KernelSa, Random, SaCounters } from '../ike/ports.js';

export class MemoryKernel implements KernelIpsec {
  private readonly sas = new Map<string, Omit<KernelSa, 'encryption' | 'integrity'>>();
  private readonly policies = new Map<string, KernelPolicy>();
  private readonly reserved = new Set<string>();

  constructor(private readonly random: Random) {}

  private key(spi: number, destination: string): string {
    return `${destination}/${spi >>> 0}`;
  }

  async allocSpi(args: { destination: string }): Promise<number> {
    for (;;) {
      const b = this.random(4);
      const spi = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      const k = this.key(spi, args.destination);
      if (spi >= 256 && !this.sas.has(k) && !this.reserved.has(k)) {
        this.reserved.add(k);
        return spi;
      }
    }
  }

  private store(sa: KernelSa): void {
    // Keys are dropped at once: this data plane never uses them.
    const { encryption: _e, integrity: _i, ...rest } = sa;
    const k = this.key(sa.spi, sa.destination);
    this.reserved.delete(k);
    this.sas.set(k, rest);
  }

  async addSa(sa: KernelSa): Promise<void> {
    this.store(sa);
  }

  async updateSa(sa: KernelSa): Promise<void> {
    this.store(sa);
  }

  async deleteSa(args: { spi: number; destination: string }): Promise<void> {
    const k = this.key(args.spi, args.destination);
    this.sas.delete(k);
    this.reserved.delete(k);
  }

  async addPolicy(p: KernelPolicy): Promise<void> {
    this.policies.set(policyId(p), p);
  }

  async deletePolicy(p: Pick<KernelPolicy, 'direction' | 'local' | 'remote'>): Promise<void> {
    this.policies.delete(policyId(p));
  }

  async querySa(args: { spi: number; destination: string }): Promise<SaCounters | undefined> {
    return this.sas.has(this.key(args.spi, args.destination)) ? { bytes: 0n, packets: 0n } : undefined;
  }

  get counts(): { sas: number; policies: number } {
    return { sas: this.sas.size, policies: this.policies.size };
  }
}

function policyId(p: Pick<KernelPolicy, 'direction' | 'local' | 'remote'>): string {
  const s = (x: KernelPolicy['local']) => `${x.startAddress}-${x.endAddress}/${x.protocol}/${x.startPort}-${x.endPort}`;
  return `${p.direction}|${s(p.local)}|${s(p.remote)}`;
}
