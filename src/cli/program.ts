import { Command, CommanderError, Option } from 'commander';
import { EXIT_CODES } from '../errors.js';
import { CLEANUP_FLAGS, ISSUE_TOKEN_FLAGS, PREPARE_FLAGS, type FlagSpec } from './flags.js';
import { fail, note } from './output.js';

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

function addFlags(cmd: Command, specs: readonly FlagSpec[]): Command {
  for (const s of specs) {
    const opt = new Option(s.flags, s.help);
    if (s.choices) opt.choices(s.choices);
    cmd.addOption(opt);
  }
  return cmd;
}

/** Run an action, turning every failure into one line on stderr and an exit status. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      await fail(e);
    }
  };
}

export function buildProgram(): Command {
  const program = new Command('oz')
    .description('Short-lived OpenID Connect identity for agent runs: AWS and GCP federation with no long-lived secret.')
    .version(__OZ_VERSION__, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .addHelpText('after', examples(['oz federate issue-token --audience sts.amazonaws.com', 'eval "$(oz federate prepare)"', 'oz federate whoami', 'oz issuer serve']));

  const federate = program
    .command('federate')
    .description('identity tokens for this run, and the cloud SDK set-up that uses them')
    .addHelpText('after', examples(['oz federate issue-token --audience sts.amazonaws.com', 'eval "$(oz federate prepare)"', 'oz federate whoami']));

  addFlags(federate.command('issue-token'), ISSUE_TOKEN_FLAGS)
    .description('print a signed identity token (JWT) for this run')
    .addHelpText(
      'after',
      examples([
        'oz federate issue-token --audience sts.amazonaws.com',
        'oz federate issue-token --audience https://vault.example.com --duration 15m --format json',
        'GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q oz federate issue-token --format gcp',
      ]),
    )
    .action(
      action(async (opts: Record<string, string | undefined>) => {
        const { issueTokenCommand } = await import('./issue-token.js');
        await issueTokenCommand(opts);
      }),
    );

  federate
    .command('whoami')
    .description('show the run context that tokens would carry, where each value comes from, and the time left')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['oz federate whoami', 'OZ_SUBJECT=user-123 oz federate whoami --json']))
    .action(
      action(async (opts: { json?: boolean }) => {
        const { whoamiCommand } = await import('./whoami.js');
        await whoamiCommand(opts);
      }),
    );

  addFlags(federate.command('prepare'), PREPARE_FLAGS)
    .description('write the AWS web identity token file and the GCP credential config, and print the variables to export')
    .addHelpText(
      'after',
      examples([
        'eval "$(oz federate prepare --aws-role-arn arn:aws:iam::123456789012:role/agent)"',
        'eval "$(oz federate prepare --gcp-project-number 123456789012 --gcp-pool-id oz-pool --gcp-provider-id oz-provider)"',
        'oz federate prepare --shell fish | source',
        'oz federate prepare --shell json',
      ]),
    )
    .action(
      action(async (opts: Record<string, string | undefined>) => {
        const { prepareCommand } = await import('./prepare.js');
        await prepareCommand(opts);
      }),
    );

  addFlags(federate.command('cleanup'), CLEANUP_FLAGS)
    .description('remove the files prepare wrote and print the lines that unset its variables (for the end of a run)')
    .addHelpText('after', examples(['eval "$(oz federate cleanup)"', 'oz federate cleanup --shell fish | source']))
    .action(
      action(async (opts: { dir?: string; shell?: string }) => {
        const { cleanupCommand } = await import('./prepare.js');
        await cleanupCommand(opts);
      }),
    );

  federate
    .command('inspect')
    .description('decode a token for a person; with --verify, check it as a relying party would')
    .argument('[token]', 'the token, or - (the default) to read it from stdin')
    .option('--verify', "fetch the issuer's discovery document and JWKS and verify the signature and times")
    .option('--audience <aud>', 'with --verify: also require this "aud"')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples([
        'oz federate issue-token --audience sts.amazonaws.com | oz federate inspect',
        'oz federate inspect "$(cat "$AWS_WEB_IDENTITY_TOKEN_FILE")" --verify --audience sts.amazonaws.com',
      ]),
    )
    .action(
      action(async (token: string | undefined, opts: { verify?: boolean; audience?: string; json?: boolean }) => {
        const { inspectCommand } = await import('./inspect.js');
        await inspectCommand(token, opts);
      }),
    );

  federate
    .command('explain')
    .description('say, offline, whether AWS, GCP or Azure would accept a token, check by check, and why not (exit 9 when refused)')
    .argument('[token]', 'the token, or - to read it from stdin; none: issue one now for the relying party\'s audience')
    .option('--aws-trust-policy <file>', 'an IAM trust policy document, or `aws iam get-role` output')
    .option('--gcp-provider <file>', '`gcloud iam workload-identity-pools providers describe --format=json` output')
    .option('--azure-credential <file>', '`az ad app federated-credential list` output (or one credential)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples([
        'aws iam get-role --role-name oz-agents > role.json && oz federate explain --aws-trust-policy role.json',
        'gcloud iam workload-identity-pools providers describe oz-provider --workload-identity-pool=oz-pool --location=global --format=json > provider.json && oz federate explain --gcp-provider provider.json',
        'az ad app federated-credential list --id "$APP_ID" > creds.json && oz federate explain --azure-credential creds.json',
        'oz federate explain "$(cat "$AWS_WEB_IDENTITY_TOKEN_FILE")" --aws-trust-policy role.json --json',
      ]),
    )
    .action(
      action(async (token: string | undefined, opts: import('./explain.js').ExplainOptions) => {
        const { explainCommand } = await import('./explain.js');
        await explainCommand(token, opts);
      }),
    );

  const setup = program
    .command('setup')
    .description('print what an administrator runs once so that AWS, GCP or Azure trusts the issuer for a scope of runs')
    .addHelpText('after', examples(['oz setup aws --issuer https://oidc.example.com --team abc123 --account-id 123456789012', 'oz setup gcp --team abc123 --project-number 123456789012', 'oz setup azure --subject user-42 --client-id 00000000-0000-0000-0000-000000000001']));
  const scoped = (cmd: Command): Command =>
    cmd
      .option('--issuer <url>', 'the issuer URL, https (default $OZ_ISSUER_URL)')
      .option('--subject <id>', 'let in runs with this sub; repeat for more', (v: string, prev: string[] = []) => [...prev, v])
      .option('--team <uid>', 'let in runs of this team')
      .option('--environment <id>', 'let in runs of this environment only (with --team or --subject)')
      .addOption(new Option('--team-by <method>', 'how AWS and Azure tell the team and environment apart: session tags or the subject format').choices(['tags', 'subject']).default('tags'))
      .option('--subject-claims <list>', 'with --team-by subject: the subject format the platform grants with (default teams,environment,sub)')
      .addOption(new Option('--format <format>', 'text: commands to paste; json; terraform').choices(['text', 'json', 'terraform']).default('text'));

  scoped(setup.command('aws'))
    .description('the IAM OIDC provider and the role trust policy, with the aws commands that create them')
    .requiredOption('--account-id <n>', 'the 12-digit AWS account ID')
    .option('--role-name <name>', 'the role to create', 'oz-agents')
    .option('--thumbprint <hex>', "the SHA-1 thumbprint of the issuer's top TLS certificate (default: computed by connecting to the issuer)")
    .addHelpText(
      'after',
      examples([
        'oz setup aws --issuer https://oidc.example.com --team abc123 --account-id 123456789012',
        'oz setup aws --subject user-42 --subject user-7 --account-id 123456789012 --thumbprint 08745487e891c19e3078c1f2a07e452950ef36f6',
        'oz setup aws --team abc123 --team-by subject --subject-claims teams,sub --account-id 123456789012 --format json',
      ]),
    )
    .action(
      action(async (opts: import('./setup.js').SetupAwsOptions) => {
        const { setupAwsCommand } = await import('./setup.js');
        await setupAwsCommand(opts);
      }),
    );

  scoped(setup.command('gcp'))
    .description('the gcloud commands for the workload identity pool, its OIDC provider and the IAM binding')
    .requiredOption('--project-number <n>', 'the project number (digits)')
    .option('--pool-id <id>', 'the workload identity pool ID', 'oz-agent-pool')
    .option('--provider-id <id>', 'the provider ID', 'oz-oidc-provider')
    .option('--service-account <email>', 'let the runs impersonate this service account')
    .option('--jwk-json-path <file>', 'for an issuer Google cannot reach: upload its JWKS from this file')
    .addHelpText('after', examples(['oz setup gcp --issuer https://oidc.example.com --team abc123 --project-number 123456789012', 'oz setup gcp --team abc123 --project-number 123456789012 --service-account agents@my-project.iam.gserviceaccount.com --format json']))
    .action(
      action(async (opts: import('./setup.js').SetupGcpOptions) => {
        const { setupGcpCommand } = await import('./setup.js');
        await setupGcpCommand(opts);
      }),
    );

  scoped(setup.command('azure'))
    .description('the federated identity credential for an Entra ID application, and the az command that creates it')
    .requiredOption('--client-id <id>', 'the application (client) ID')
    .option('--tenant-id <id>', 'the directory (tenant) ID, for the prepare line')
    .addHelpText('after', examples(['oz setup azure --issuer https://oidc.example.com --subject user-42 --client-id 00000000-0000-0000-0000-000000000001']))
    .action(
      action(async (opts: import('./setup.js').SetupAzureOptions) => {
        const { setupAzureCommand } = await import('./setup.js');
        await setupAzureCommand(opts);
      }),
    );

  const issuer = program
    .command('issuer')
    .description("the embedded issuer's keys and its OIDC endpoints")
    .addHelpText('after', examples(['oz issuer init --alg ES256', 'oz issuer serve --port 8787', 'oz issuer publish --out ./site --issuer https://oidc.example.com']));
  const algOption = () => new Option('--alg <alg>', 'signing algorithm').choices(['RS256', 'ES256']);

  issuer
    .command('init')
    .description('create the signing key if there is none (it is also created on first use)')
    .addOption(algOption().default(undefined, 'RS256, or $OZ_SIGNING_ALG'))
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['oz issuer init', 'oz issuer init --alg ES256']))
    .action(
      action(async (opts: { alg?: string; json?: boolean }) => {
        const { initCommand } = await import('./issuer.js');
        await initCommand(opts);
      }),
    );

  issuer
    .command('rotate')
    .description('replace the signing key; the old public key stays published until its tokens have expired')
    .addOption(algOption().default(undefined, 'the current key\'s algorithm'))
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['oz issuer rotate', 'oz issuer rotate --alg ES256 --json']))
    .action(
      action(async (opts: { alg?: string; json?: boolean }) => {
        const { rotateCommand } = await import('./issuer.js');
        await rotateCommand(opts);
      }),
    );

  issuer
    .command('jwks')
    .description('print the public JWK Set (active and still-needed retired keys)')
    .addHelpText('after', examples(['oz issuer jwks', 'oz issuer jwks | jq -r ".keys[].kid"']))
    .action(
      action(async () => {
        const { jwksCommand } = await import('./issuer.js');
        await jwksCommand();
      }),
    );

  issuer
    .command('discovery')
    .description('print the OpenID Provider configuration document')
    .option('--issuer <url>', 'issuer URL (default $OZ_ISSUER_URL or http://127.0.0.1:8787)')
    .addHelpText('after', examples(['oz issuer discovery', 'oz issuer discovery --issuer https://oidc.example.com']))
    .action(
      action(async (opts: { issuer?: string }) => {
        const { discoveryCommand } = await import('./issuer.js');
        await discoveryCommand(opts);
      }),
    );

  issuer
    .command('publish')
    .description('write the discovery document and JWKS as static files to host at the issuer URL')
    .requiredOption('--out <dir>', 'directory to write .well-known/ into')
    .option('--issuer <url>', 'issuer URL (default $OZ_ISSUER_URL or http://127.0.0.1:8787)')
    .addHelpText('after', examples(['oz issuer publish --out ./site --issuer https://oidc.example.com']))
    .action(
      action(async (opts: { out: string; issuer?: string }) => {
        const { publishCommand } = await import('./issuer.js');
        await publishCommand(opts);
      }),
    );

  issuer
    .command('serve')
    .description('serve discovery and the JWKS over HTTP until SIGTERM or SIGINT')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '8787')
    .option('--issuer <url>', 'issuer URL (default $OZ_ISSUER_URL, else the address served)')
    .option('--allow-audience <aud>', 'issue tokens only for this audience; repeat for more (default $OZ_ALLOWED_AUDIENCES, comma-separated; none: any)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--rate-limit <n>', 'token requests per second per run grant, bursts of 3x; 0 turns it off (default $OZ_TOKEN_RATE_LIMIT or 10)')
    .option('--request-timeout <duration>', 'time a client has to send a whole request before it is cut off', '15s')
    .addHelpText(
      'after',
      examples([
        'oz issuer serve',
        'OZ_ISSUER_URL=https://oidc.example.com oz issuer serve --host 0.0.0.0 --port 8080',
        'oz issuer serve --allow-audience sts.amazonaws.com --allow-audience https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/q',
      ]),
    )
    .action(
      action(async (opts: { host: string; port: string; issuer?: string; allowAudience?: string[]; rateLimit?: string; requestTimeout?: string }) => {
        const { serveCommand } = await import('./serve.js');
        await serveCommand(opts);
      }),
    );

  issuer
    .command('grant-run')
    .description("mint a run token (the sandbox's OZ_RUN_TOKEN) that binds the run's claims until its deadline")
    .requiredOption('--run-id <id>', 'the run ID (claim run_id)')
    .requiredOption('--subject <sub>', 'the user or service-account ID (claim sub)')
    .option('--email <email>', 'claim email (user runs)')
    .option('--teams <teams>', 'claim teams: comma-separated team UIDs')
    .option('--environment <id>', 'claim environment')
    .option('--agent-name <name>', 'claim agent_name (the skill\'s name)')
    .option('--skill-spec <spec>', 'claim skill_spec, e.g. org/repo:.warp/skills/name/SKILL.md')
    .option('--host <host>', 'claim host: warp, or the worker ID when self-hosting')
    .option('--max-duration <duration>', "the run's maximum runtime from now (default 4h, at most 24h)")
    .option('--deadline <time>', "when the run's maximum runtime ends: RFC 3339 or Unix seconds (instead of --max-duration)")
    .option('--issuer <url>', 'issuer URL (default $OZ_ISSUER_URL or http://127.0.0.1:8787); the token service must serve it')
    .option('--json', 'print {run_token, expires_at, claims}')
    .addHelpText(
      'after',
      examples([
        'oz issuer grant-run --run-id run-42 --subject user-7 --email dev@example.com --teams team-a --host warp',
        'OZ_RUN_TOKEN="$(oz issuer grant-run --run-id run-42 --subject sa-3 --deadline 2026-01-02T15:04:05Z)"',
      ]),
    )
    .action(
      action(async (opts: import('./grant-run.js').GrantRunOptions) => {
        const { grantRunCommand } = await import('./grant-run.js');
        await grantRunCommand(opts);
      }),
    );

  return program;
}

/** Commander's own messages ("error: unknown option '--x'") become oz's one-line form. */
function configureErrors(cmd: Command): void {
  cmd.exitOverride();
  cmd.configureOutput({
    outputError: (str) => {
      const text = str.replace(/^error:\s*/i, '').trim().replace(/\s*\n\s*/g, ' ');
      note(`oz: ${text} (see \`${commandPath(cmd)} --help\`)`);
    },
  });
  for (const sub of cmd.commands) configureErrors(sub);
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export async function runProgram(argv: string[]): Promise<void> {
  const program = buildProgram();
  configureErrors(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are not failures; a bare group name shows its help and is a usage error.
      const ok = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0;
      process.exitCode = ok ? 0 : EXIT_CODES.usage;
      return;
    }
    throw e;
  }
}
