export interface FloodOptions {
  url: string;
  connections: number;
  pipeline: number;
  seconds: number;
  path?: string;
  maxTotal?: number;
  readEveryMs?: number;
}
export interface FloodStats {
  opened: number;
  connected: number;
  cutByServer: number;
  refused: number;
  open: number;
  peakOpen: number;
}
export interface ProbeResult {
  status?: number;
  body?: string;
  error?: string;
  ms: number;
}
export interface ProbeOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}
export function flood(opts: FloodOptions): Promise<FloodStats>;
export function probe(url: string, opts?: ProbeOptions): Promise<ProbeResult>;
export function memoryOf(pid: number): { rss: number; peak: number };
export function watch<T>(
  pid: number,
  probes: Record<string, () => Promise<ProbeResult>>,
  during: Promise<T>,
  everyMs?: number,
): Promise<{ value: T; samples: number[]; results: Record<string, ProbeResult[]> }>;
export function mib(bytes: number): string;
