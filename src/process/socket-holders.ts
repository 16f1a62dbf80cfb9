import { readdirSync, readlinkSync } from 'node:fs';

/** The socket process `pid` has on descriptor `fd`, as /proc names it (`socket:[inode]`), if it has one. */
export function socketOf(pid: number, fd: number): string | undefined {
  try {
    const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    return link.startsWith('socket:[') ? link : undefined;
  } catch {
    return undefined; // gone already, or not ours to look at
  }
}

/** The processes with a descriptor on one of `sockets` (names as `socketOf` gives them). */
export function socketHolders(sockets: ReadonlySet<string>): number[] {
  if (sockets.size === 0) return [];
  const holders: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    if (fds.some((fd) => sockets.has(socketOf(Number(entry), Number(fd)) ?? ''))) holders.push(Number(entry));
  }
  return holders;
}
