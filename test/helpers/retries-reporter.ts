import type { Reporter, TestModule } from 'vitest/node';
import { relative } from 'node:path';

/**
 * Names every test that passed only on its retry (vitest.config.ts allows one), so that a
 * flaky test shows in every run's output instead of hiding behind the retry.
 */
export default class RetriesReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const retried: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const retries = t.diagnostic()?.retryCount ?? 0;
        if (retries > 0) retried.push(`${relative(process.cwd(), m.moduleId)} > ${t.fullName} (${t.result().state} after ${retries} retr${retries === 1 ? 'y' : 'ies'})`);
      }
    }
    console.log(retried.length === 0 ? 'tests that needed a retry: none' : `tests that needed a retry: ${retried.length}\n  ${retried.join('\n  ')}`);
  }
}
