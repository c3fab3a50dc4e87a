/** Parses `ip -s xfrm policy` text (iproute2) into comparable records: the independent view of the kernel's state. */
export interface IpPolicy {
  src: string;
  dst: string;
  proto?: string;
  sport?: number;
  dport?: number;
  dir: string;
  action: string;
  index: number;
  priority: number;
  mark?: string;
  ifId?: number;
  tmpls: { src: string; dst: string; proto: string; reqid: number; mode: string }[];
}

export function parseIpXfrmPolicies(text: string): IpPolicy[] {
  const out: IpPolicy[] = [];
  let cur: IpPolicy | undefined;
  let tmpl: IpPolicy['tmpls'][number] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const words = line.split(/\s+/);
    const val = (k: string): string | undefined => {
      const i = words.indexOf(k);
      return i >= 0 ? words[i + 1] : undefined;
    };
    if (!raw.startsWith('\t') && !raw.startsWith(' ') && words[0] === 'src') {
      cur = { src: words[1]!, dst: val('dst')!, dir: '', action: 'allow', index: -1, priority: -1, tmpls: [] };
      const proto = val('proto');
      if (proto) cur.proto = proto;
      if (val('sport')) cur.sport = Number(val('sport'));
      if (val('dport')) cur.dport = Number(val('dport'));
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    if (words[0] === 'dir') {
      cur.dir = words[1]!;
      cur.action = val('action') ?? 'allow';
      cur.index = Number(val('index') ?? -1);
      cur.priority = Number(val('priority') ?? -1);
    } else if (words[0] === 'mark') {
      cur.mark = words[1]!;
    } else if (words[0] === 'if_id') {
      cur.ifId = Number(words[1]);
    } else if (words[0] === 'tmpl') {
      tmpl = { src: val('src')!, dst: val('dst')!, proto: '', reqid: -1, mode: '' };
      cur.tmpls.push(tmpl);
    } else if (words[0] === 'proto' && tmpl) {
      tmpl.proto = words[1]!;
      // `reqid 5` plain, or `reqid 5(0x00000005)` with -s
      tmpl.reqid = Number.parseInt(val('reqid') ?? '-1', 10);
      tmpl.mode = val('mode') ?? '';
    }
  }
  return out;
}
