/* bf-data — generate a data set (bf-data(1)). */
#include "cli.h"
#include "bf/tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-data modarith [--op add|sub|mul|div] [--p P] [--frac F] [options]\n"
    "       bf-data seq [--task copy|reverse|sort|increment] [--min-len N] [--max-len N]\n"
    "                   [--prompt TEXT] [--n-train N] [--n-val N] [options]\n"
    "       bf-data seq --tasks T1,T2,... [--no-prompt] [--min-len N] [--max-len N] ...\n"
    "       bf-data text --file F [--ctx T] [--val-frac F] [options]\n"
    "       bf-data sudoku [--size 4|6|9] [--holes K[-K2]] [--augment K] [--n-train N]\n"
    "                      [--n-val N] [options]\n"
    "\n"
    "Writes a data stream: I32 tensors train.x, train.y, val.x, val.y of shape\n"
    "[rows, T]; y is the next token at each position, -1 where no loss is taken.\n"
    "Val rows are held out: no val row's x equals a train row's x (copies too).\n"
    "\n"
    "modarith   [a, op, b, =] -> c mod P, loss on the last position; tokens 0..P-1\n"
    "           are numbers, P is '=', P+1 the operator (vocab P+2).  add/sub use\n"
    "           all P^2 pairs, mul/div b in [1, P) (div needs a prime P).  A seeded\n"
    "           shuffle puts a share F in train, the rest in val.\n"
    "  --op OP            add, sub, mul or div (default add)\n"
    "  --p P              the modulus (default 97)\n"
    "  --frac F           train share (default 0.5)\n"
    "\n"
    "seq        byte-level rows such as \"3141=1413\\n\": random digit strings,\n"
    "           the answer after '=', then a newline; loss on the answer bytes and\n"
    "           the newline.  A val row is drawn again until it is unlike every\n"
    "           row before it (train or val).\n"
    "  --task T           copy, reverse, sort or increment (default reverse)\n"
    "  --min-len N        shortest digit string (default 3)\n"
    "  --max-len N        longest digit string (default 6)\n"
    "  --prompt TEXT      prepend TEXT to every row (\"Reverse: 3141=1413\")\n"
    "  --tasks LIST       a mixture: each row's task drawn from LIST (comma-separated),\n"
    "                     the row starting with its task's instruction (\"Copy: \",\n"
    "                     \"Reverse: \", \"Sort: \", \"Increment: \")\n"
    "  --no-prompt        the mixture's rows without their instructions\n"
    "  --n-train N        train rows (default 2000)\n"
    "  --n-val N          val rows (default 200)\n"
    "\n"
    "text       byte-level language modelling on a file: the first bytes train,\n"
    "           the last share F val, cut into windows of T+1 bytes; a val window\n"
    "           equal to a train window (repeated text) is dropped.\n"
    "  --file F           the text file\n"
    "  --ctx T            tokens per row (default 64)\n"
    "  --val-frac F       val share (default 0.1)\n"
    "\n"
    "sudoku     puzzles with exactly one solution: a random full grid (seeded\n"
    "           backtracking), then cells blanked while a solution counter still\n"
    "           finds one; x the grid (0 blank, 1..S), y the solution on the blanks\n"
    "           and -1 on the givens (vocab S+1, ctx S*S).  No puzzle is made twice,\n"
    "           even relabeled, and no val puzzle equals a train row or copy.\n"
    "  --size S           4, 6 or 9 (boxes 2x2, 2x3, 3x3; default 4)\n"
    "  --holes K[-K2]     blanks a puzzle, or a range (default 8; at most 12, 27, 59)\n"
    "  --augment K        K copies of each train puzzle: digits relabeled, bands,\n"
    "                     stacks, rows and columns within them shuffled (default 0)\n"
    "  --n-train N --n-val N   puzzles (defaults 1000, 100)\n"
    "\n"
    "  --seed N           modarith, seq and sudoku: shuffle and sampling seed (default 1)\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_OP = BF_OPT_PROGRAM, O_P, O_FRAC, O_TASK, O_MINLEN, O_MAXLEN, O_PROMPT, O_NTRAIN, O_NVAL, O_FILE, O_CTX, O_VALFRAC,
       O_TASKS, O_NOPROMPT, O_SIZE, O_HOLES, O_AUGMENT };

typedef enum { T_MODARITH, T_SEQ, T_TEXT, T_SUDOKU } task_kind;
static const char *const task_names[] = {"modarith", "seq", "text", "sudoku", NULL};

struct cmdline {
    task_kind kind;
    bf_modarith_cfg mod;
    bf_seq_cfg seq;
    bf_text_cfg text;
    bf_sudoku_cfg sudoku;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_SEED,
        {"op", required_argument, 0, O_OP}, {"p", required_argument, 0, O_P}, {"frac", required_argument, 0, O_FRAC},
        {"task", required_argument, 0, O_TASK}, {"min-len", required_argument, 0, O_MINLEN},
        {"max-len", required_argument, 0, O_MAXLEN}, {"prompt", required_argument, 0, O_PROMPT},
        {"n-train", required_argument, 0, O_NTRAIN}, {"n-val", required_argument, 0, O_NVAL},
        {"file", required_argument, 0, O_FILE}, {"ctx", required_argument, 0, O_CTX},
        {"val-frac", required_argument, 0, O_VALFRAC}, {"tasks", required_argument, 0, O_TASKS},
        {"no-prompt", no_argument, 0, O_NOPROMPT}, {"size", required_argument, 0, O_SIZE},
        {"holes", required_argument, 0, O_HOLES}, {"augment", required_argument, 0, O_AUGMENT}, {0, 0, 0, 0}};
    /* which flags each task takes; any other task flag is a usage error */
    static const int allowed[4][14] = {
        [T_MODARITH] = {O_OP, O_P, O_FRAC},
        [T_SEQ] = {O_TASK, O_MINLEN, O_MAXLEN, O_PROMPT, O_NTRAIN, O_NVAL, O_TASKS, O_NOPROMPT},
        [T_TEXT] = {O_FILE, O_CTX, O_VALFRAC},
        [T_SUDOKU] = {O_SIZE, O_HOLES, O_AUGMENT, O_NTRAIN, O_NVAL},
    };
    memset(cl, 0, sizeof *cl);
    cl->mod = (bf_modarith_cfg){BF_MOD_ADD, 97, 0.5, 1};
    cl->seq = (bf_seq_cfg){BF_SEQ_REVERSE, 3, 6, NULL, 2000, 200, 1, 0, 0};
    int have_task = 0;
    cl->text = (bf_text_cfg){NULL, 64, 0.1};
    cl->sudoku = (bf_sudoku_cfg){4, 8, 8, 0, 1000, 100, 1};
    bf_cli_begin(argc, argv, "bf-data", usage);
    /* the task comes first, git-style; --help/--version may come alone */
    if (argc > 1 && argv[1][0] != '-') {
        int k = 0;
        while (task_names[k] && strcmp(argv[1], task_names[k])) k++;
        if (!task_names[k]) bf_usage_die("unknown data set '%s' (modarith, seq, text or sudoku)", argv[1]);
        cl->kind = (task_kind)k;
        optind = 2;
    } else {
        int c = argc > 1 ? getopt_long(argc, argv, ":ho:", opts, NULL) : -1;
        if (c != -1) bf_cli_common(c, optarg);
        bf_usage_die("needs a data set: modarith, seq, text or sudoku");
    }
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (c == BF_OPT_SEED && cl->kind == T_TEXT) bf_usage_die("text is not random; it takes no --seed");
        if (bf_cli_common(c, optarg)) continue;
        int ok = 0;
        for (int k = 0; k < 14 && allowed[cl->kind][k]; k++) ok |= allowed[cl->kind][k] == c;
        if (!ok) bf_usage_die("'--%s' is not an option of %s", bf_opt_name(opts, c), task_names[cl->kind]);
        switch (c) {
        case O_OP: cl->mod.op = (bf_modarith_op)bf_parse_choice("op", optarg, bf_modarith_ops); break;
        case O_P: cl->mod.p = (int)bf_parse_int("p", optarg, 2, 65536); break;
        case O_FRAC: cl->mod.frac = bf_parse_double("frac", optarg, 0, 1); break;
        case O_TASK: cl->seq.task = (bf_seq_task)bf_parse_choice("task", optarg, bf_seq_tasks); have_task = 1; break;
        case O_TASKS: {
            char one[32];
            for (const char *p = optarg; *p;) {
                size_t n = strcspn(p, ",");
                snprintf(one, sizeof one, "%.*s", (int)(n < 31 ? n : 31), p);
                cl->seq.mix |= 1u << bf_parse_choice("tasks", one, bf_seq_tasks);
                p += n + (p[n] == ',');
            }
            if (!cl->seq.mix) bf_usage_die("--tasks needs at least one task");
            break;
        }
        case O_NOPROMPT: cl->seq.no_prompt = 1; break;
        case O_MINLEN: cl->seq.min_len = (int)bf_parse_int("min-len", optarg, 1, 4096); break;
        case O_MAXLEN: cl->seq.max_len = (int)bf_parse_int("max-len", optarg, 1, 4096); break;
        case O_PROMPT: cl->seq.prompt = optarg; break;
        case O_NTRAIN:
            cl->seq.n_train = cl->sudoku.n_train = (size_t)bf_parse_int("n-train", optarg, 0, 10000000);
            break;
        case O_NVAL:
            cl->seq.n_val = cl->sudoku.n_val = (size_t)bf_parse_int("n-val", optarg, 0, 10000000);
            break;
        case O_SIZE: cl->sudoku.size = (int)bf_parse_int("size", optarg, 4, 9); break;
        case O_HOLES: {
            int a, b, used = 0;
            if (sscanf(optarg, "%d-%d%n", &a, &b, &used) == 2 && !optarg[used]) ;
            else if (sscanf(optarg, "%d%n", &a, &used) == 1 && !optarg[used]) b = a;
            else bf_usage_die("--holes: '%s' is not K or K-K2", optarg);
            cl->sudoku.holes_min = a;
            cl->sudoku.holes_max = b;
            break;
        }
        case O_AUGMENT: cl->sudoku.augment = (int)bf_parse_int("augment", optarg, 0, 1000); break;
        case O_FILE: cl->text.file = optarg; break;
        case O_CTX: cl->text.ctx = (int)bf_parse_int("ctx", optarg, 1, 65536); break;
        case O_VALFRAC: cl->text.val_frac = bf_parse_double("val-frac", optarg, 0, 0.9); break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (optind < argc) bf_usage_die("unexpected argument '%s'", argv[optind]);
    if (cl->kind == T_TEXT && !cl->text.file) bf_usage_die("text needs --file F");
    if (cl->kind == T_SEQ && cl->seq.min_len > cl->seq.max_len) bf_usage_die("--min-len is above --max-len");
    if (have_task && cl->seq.mix) bf_usage_die("--task is one task; --tasks a mixture: give one of them");
    cl->mod.seed = cl->seq.seed = cl->sudoku.seed = bf_cli_state.seed;
    if (cl->kind == T_SUDOKU && bf_task_sudoku_check(&cl->sudoku)) bf_usage_die("%s", bf_errmsg());
    if ((cl->kind == T_MODARITH && bf_task_modarith_check(&cl->mod)) || (cl->kind == T_SEQ && bf_task_seq_check(&cl->seq)))
        bf_usage_die("%s", bf_errmsg());
    bf_cli_end(1);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_header h;
    bf_tset s;
    int rc = cl.kind == T_MODARITH ? bf_task_modarith(&cl.mod, &h, &s)
           : cl.kind == T_SEQ      ? bf_task_seq(&cl.seq, &h, &s)
           : cl.kind == T_TEXT     ? bf_task_text(&cl.text, &h, &s)
                                   : bf_task_sudoku(&cl.sudoku, &h, &s);
    if (rc) bf_die_lib();
    bf_cli_write_all(&h, &s);
    bf_tset_release(&s);
    bf_header_release(&h);
    return 0;
}
