#!/usr/bin/env bats
# bf-data (bf-data(1), bitforge(7)): help, usage errors, every task and flag decoded
# row by row (tests/tools/bf-dump.c prints a tensor's values), the splits,
# determinism, -o atomicity and the terminal.
#
# Families: 0x help and version, 1x usage and input errors, 2x modarith,
# 3x seq, 4x text, 5x determinism, 6x output (-o, pipes, the terminal),
# 7x held-out val rows (no val row's x is a train row's, in every data set).

load helpers

# usage_cases ARGS-LINE…: each line, split into words, must be a usage error
# with one line on stderr and nothing on stdout
usage_cases() {
    local line
    local -a args
    for line in "$@"; do
        read -ra args <<<"$line"
        run3 bf-data "${args[@]}"
        [[ $status -eq 2 ]] || fail "bf-data $line: exit status $status, want 2 ($stderr)"
        [[ -z $(one_line_reason "$T/err" bf-data) ]] || fail "bf-data $line: stderr is not one line: $stderr"
        [[ ! -s $T/out ]] || fail "bf-data $line: wrote to stdout"
    done
}

# check_modarith FILE SPLIT OP P: every row of SPLIT is [a, P+1, b, P] with
# targets [-1, -1, -1, a OP b mod P], b in the op's range; prints "a,b" per
# row on stdout (for coverage checks) and fails on the first bad row
check_modarith() {
    paste -d '|' <(bf-dump "$2.x" "$1") <(bf-dump "$2.y" "$1") | perl -e '
        my ($op, $P) = @ARGV;
        while (<STDIN>) {
        chomp;
        my ($x, $y) = split /\|/;
        my @x = split " ", $x; my @y = split " ", $y;
        my ($a, $o, $b, $eq) = @x;
        die "row $.: x [@x]: not [a, $P+1, b, $P]\n" unless @x == 4 && $o == $P + 1 && $eq == $P;
        die "row $.: a $a out of range\n" unless $a >= 0 && $a < $P;
        my $b0 = $op eq "mul" || $op eq "div" ? 1 : 0;
        die "row $.: b $b out of [$b0, $P)\n" unless $b >= $b0 && $b < $P;
        die "row $.: targets [@y]: want -1 on the first three\n" unless "@y[0..2]" eq "-1 -1 -1";
        my $c = $y[3];
        my $ok = $op eq "add" ? $c == ($a + $b) % $P
               : $op eq "sub" ? $c == (($a - $b) % $P + $P) % $P
               : $op eq "mul" ? $c == ($a * $b) % $P
               :                $c >= 0 && $c < $P && ($c * $b) % $P == $a;
        die "row $.: $a $op $b mod $P gave $c\n" unless $ok;
        print "$a,$b\n";
        }' "$3" "$4"
}

# check_seq FILE SPLIT TASK MIN MAX [PROMPT]: decodes every row of SPLIT as
# bytes: x holds PROMPT digits '=' answer (then 0 padding), y holds -1 up to
# the '=' and then the answer bytes and '\n' (the next byte at each
# position), then -1; the answer is TASK of the digits, computed here
# independently.  Prints each row's digit string; fails on the first bad row.
check_seq() {
    paste -d '|' <(bf-dump "$2.x" "$1") <(bf-dump "$2.y" "$1") | perl -e '
        my ($task, $min, $max, $prompt) = @ARGV;
        while (<STDIN>) {
        chomp;
        my ($x, $y) = split /\|/;
        my @x = split " ", $x; my @y = split " ", $y;
        die "row $.: x and y lengths differ\n" unless @x == @y;
        my $p = $#y;
        $p-- while $p >= 0 && $y[$p] == -1;
        die "row $.: no target\n" if $p < 0;
        my $s = join("", map { chr } @x[0 .. $p]) . chr($y[$p]);
        die "row $.: padding after the row: x [@x[$p+1 .. $#x]]\n" if grep { $_ != 0 } @x[$p + 1 .. $#x];
        $s =~ /^\Q$prompt\E([0-9]+)=([0-9]+)\n\z/ or die "row $.: bytes \"$s\" are not PROMPT digits=answer newline\n";
        my ($in, $ans) = ($1, $2);
        my $n = length $in;
        die "row $.: input $in has length $n outside [$min, $max]\n" unless $n >= $min && $n <= $max;
        my $want = $task eq "copy" ? $in
                 : $task eq "reverse" ? scalar reverse($in)
                 : $task eq "sort" ? join("", sort split //, $in)
                 : do { my @d = split //, $in; my $k = $#d;
                        while ($k >= 0 && $d[$k] eq "9") { $d[$k] = "0"; $k-- }
                        $k >= 0 ? ($d[$k]++, join("", @d))[1] : "1" . join("", @d) };
        die "row $.: $task of $in is $want, the row says $ans\n" unless $ans eq $want;
        my $first = length($prompt) + $n + 1;    # index of the first answer byte
        for my $t (0 .. $#y) {
            my $w = $t + 1 >= $first && $t <= $p ? ord(substr($s, $t + 1, 1)) : -1;
            die "row $.: target at $t is $y[$t], want $w (\"$s\")\n" unless $y[$t] == $w;
        }
        print "$in\n";
        }' "$3" "$4" "$5" "${6-}"
}

# rows FILE NAME: the first dimension of tensor NAME
rows() { bf-eval --json "$1" | jshape "$2" | cut -d, -f1; }

# ---------------------------------------------------------------- 0x help

@test "data-01 --help prints usage on stdout and exits 0" {
    run3 bf-data --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-data' "$T/out"
    local f
    for f in modarith seq text --op --p --frac --task --min-len --max-len --prompt --n-train --n-val --file \
        --ctx --val-frac --seed --output --help --version; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
}

@test "data-02 -h is --help, also after a task and its options" {
    run -0 bf-data -h
    assert_line --index 0 --partial 'usage: bf-data'
    run -0 bf-data seq --task copy -h
    assert_line --index 0 --partial 'usage: bf-data'
}

@test "data-03 --version prints the version and exits 0" {
    prints_version bf-data
    [[ $(awk '{ print $3 }' "$T/out") == "$(bf-init --version | awk '{ print $3 }')" ]]
}

# ------------------------------------------------- 1x usage and input errors

@test "data-10 no task, an unknown task, stray arguments and unknown options are usage errors" {
    usage_cases '' 'bogus' 'seq extra' 'seq --bogus' 'modarith -x' 'modarith --p' '--p 5' 'seq --seed x' \
        'seq --seed -1'
    run3 bf-data bogus
    [[ $stderr == *"'bogus'"* && $stderr == *modarith* && $stderr == *seq* && $stderr == *text* ]]
}

@test "data-11 bad numbers and choices are usage errors naming the option" {
    usage_cases 'modarith --p 1' 'modarith --p x' 'modarith --p 65537' 'modarith --frac 1.5' 'modarith --frac -0.1' \
        'modarith --frac nan' 'modarith --op pow' 'seq --min-len 0' 'seq --max-len 4097' 'seq --task shuffle' \
        'seq --n-train -1' 'seq --n-val x' 'text --file f --ctx 0' 'text --file f --val-frac 0.95'
    run3 bf-data modarith --op pow
    [[ $stderr == *--op* && $stderr == *add* && $stderr == *div* && $stderr == *"'pow'"* ]]
    run3 bf-data seq --min-len 0
    [[ $stderr == *--min-len* && $stderr == *"'0'"* ]]
}

@test "data-12 an option of another task, --min-len above --max-len, text without --file or with --seed: usage errors" {
    usage_cases 'seq --p 5' 'modarith --task copy' 'text --file f --n-train 5' 'modarith --ctx 4' 'seq --file f' \
        'seq --min-len 5 --max-len 3' 'text' 'text --ctx 8' 'text --file f --seed 3'
    run3 bf-data seq --p 5
    [[ $stderr == *"'--p'"* && $stderr == *seq* ]] || fail "the message should quote the option '--p': $stderr"
}

@test "data-13 impossible settings are usage errors: div with a composite p, more distinct rows than lengths allow" {
    # both are wrong on the command line alone, whatever the input: bad usage (bitforge(7))
    usage_cases 'modarith --op div --p 10' 'seq --min-len 1 --max-len 1 --n-train 6 --n-val 5'
    run3 bf-data modarith --op div --p 10
    [[ $stderr == *prime* && $stderr == *10* ]]
}

@test "data-14 text: a missing file, a directory, a file too short: exit 1, one line naming it" {
    run3 bf-data text --file "$T/missing.txt"
    assert_data_error bf-data
    [[ $stderr == *missing.txt* ]]
    mkdir dir.txt
    run3 bf-data text --file dir.txt
    assert_data_error bf-data
    [[ $stderr == *dir.txt* ]]
    printf 'short' >short.txt
    run3 bf-data text --file short.txt --ctx 8
    assert_data_error bf-data
    [[ $stderr == *short.txt* ]]
    [[ ! -s $T/out ]]
}

# ------------------------------------------------------------ 2x modarith

@test "data-20 modarith add: all P² pairs once, train round(F·n), vocab P+2, ctx 4" {
    bf-data modarith --op add --p 7 --frac 0.3 >d.bf
    bf-eval --json d.bf >j.json
    [[ $(jget '$j->{kind}' j.json) == data ]]
    [[ $(jmeta vocab j.json) == 9 && $(jmeta ctx j.json) == 4 && $(jmeta task j.json) == modarith ]]
    [[ $(jmeta op j.json) == add && $(jmeta p j.json) == 7 ]]
    # 49 pairs: round(0.3·49) = round(14.7) = 15 train, 34 val
    [[ $(jshape train.x j.json) == 15,4 && $(jshape train.y j.json) == 15,4 ]]
    [[ $(jshape val.x j.json) == 34,4 && $(jshape val.y j.json) == 34,4 ]]
    [[ $(jget 'join " ", map { $_->{dtype} } @{$j->{tensors}}' j.json) == "I32 I32 I32 I32" ]]
    check_modarith d.bf train add 7 >tr
    check_modarith d.bf val add 7 >va
    # together every pair exactly once
    [[ $(cat tr va | sort -u | wc -l) -eq 49 && $(cat tr va | wc -l) -eq 49 ]]
}

@test "data-21 modarith sub, mul and div: the answers, b ≥ 1 for mul/div (P(P−1) pairs)" {
    local op n want
    for op in sub mul div; do
        bf-data modarith --op $op --p 11 --frac 0.3 >d.bf
        # round(0.3·121) = 36 (sub), round(0.3·110) = 33 (mul, div)
        n=110 want=33
        [[ $op == sub ]] && n=121 want=36
        check_modarith d.bf train $op 11 >tr || fail "$op train"
        check_modarith d.bf val $op 11 >va || fail "$op val"
        [[ $(cat tr va | sort -u | wc -l) -eq $n && $(cat tr va | wc -l) -eq $n ]] || fail "$op: not $n distinct pairs"
        [[ $(wc -l <tr) -eq $want ]] || fail "$op: $(wc -l <tr) train rows, want $want"
        [[ $(bf-eval --json d.bf | jmeta op) == "$op" ]]
    done
}

@test "data-22 modarith --frac: the split sizes follow round(F·n), also 0 and 1" {
    local f want
    for f in 0:0 1:49 0.6:29 0.9:44 0.02:1; do
        want=${f#*:}
        bf-data modarith --p 7 --frac "${f%%:*}" >d.bf
        [[ $(rows d.bf train.x) -eq $want ]] || fail "--frac ${f%%:*}: $(rows d.bf train.x) train rows, want $want"
        [[ $(rows d.bf val.x) -eq $((49 - want)) ]] || fail "--frac ${f%%:*}: val rows"
    done
}

@test "data-23 modarith defaults: op add, p 97, frac 0.5" {
    bf-data modarith >d.bf
    bf-eval --json d.bf >j.json
    [[ $(jmeta op j.json) == add && $(jmeta p j.json) == 97 && $(jmeta vocab j.json) == 99 ]]
    # 9409 pairs, round(4704.5) = 4705 train
    [[ $(jshape train.x j.json) == 4705,4 && $(jshape val.x j.json) == 4704,4 ]]
}

@test "data-24 modarith --p: div takes a prime, the vocab follows p" {
    bf-data modarith --op div --p 13 >d.bf
    [[ $(bf-eval --json d.bf | jmeta vocab) == 15 ]]
    check_modarith d.bf train div 13 >/dev/null
    bf-data modarith --op add --p 2 --frac 0.5 >e.bf
    [[ $(bf-eval --json e.bf | jmeta vocab) == 4 ]]
    check_modarith e.bf train add 2 >/dev/null
}

# ----------------------------------------------------------------- 3x seq

@test "data-30 seq reverse: the bytes of every row, targets only on the answer and the newline" {
    bf-data seq --task reverse --n-train 300 --n-val 50 >d.bf
    check_seq d.bf train reverse 3 6 >tr
    check_seq d.bf val reverse 3 6 >/dev/null
    [[ $(wc -l <tr) -eq 300 ]]
    # one row spelled out: "3141=1413\n" would be x "3141=1413", y -1 ×4 then "1413\n"
    local x y
    x=$(bf-dump train.x d.bf | head -n 1)
    y=$(bf-dump train.y d.bf | head -n 1)
    local in=${x%% 61 *} n
    n=$(wc -w <<<"$in")
    # the targets start at the '=' (position n) and the first is the last input digit
    [[ $(cut -d' ' -f$((n + 1)) <<<"$y") == "$(cut -d' ' -f$n <<<"$x")" ]]
    [[ $(cut -d' ' -f1-$n <<<"$y") == "$(printf -- '-1 %.0s' $(seq "$n") | sed 's/ $//')" ]]
    # the meta
    bf-eval --json d.bf >j.json
    [[ $(jmeta task j.json) == reverse && $(jmeta vocab j.json) == 256 && $(jmeta ctx j.json) == 13 ]]
}

@test "data-31 seq copy, sort and increment answer their task" {
    local task
    for task in copy sort increment; do
        bf-data seq --task $task --min-len 1 --max-len 4 --n-train 400 --n-val 40 >d.bf
        check_seq d.bf train $task 1 4 >/dev/null || fail "$task train"
        check_seq d.bf val $task 1 4 >/dev/null || fail "$task val"
        [[ $(bf-eval --json d.bf | jmeta task) == "$task" ]]
    done
    # increment can carry into a longer answer: one more column of ctx
    [[ $(bf-eval --json d.bf | jmeta ctx) -eq $((4 + 1 + 5 + 1 - 1)) ]]
}

@test "data-32 seq --min-len and --max-len: every length in range appears, ctx fits the longest" {
    bf-data seq --task copy --min-len 2 --max-len 5 --n-train 500 --n-val 20 >d.bf
    check_seq d.bf train copy 2 5 >tr
    [[ $(awk '{ print length($0) }' tr | sort -n | uniq | tr '\n' ' ') == "2 3 4 5 " ]]
    # "12345=12345\n": 12 bytes, 11 positions
    [[ $(bf-eval --json d.bf | jmeta ctx) -eq 11 ]]
    bf-data seq --task copy --min-len 4 --max-len 4 --n-train 50 --n-val 5 >e.bf
    check_seq e.bf train copy 4 4 >tr
    [[ $(awk '{ print length($0) }' tr | sort -u) == 4 ]]
    [[ $(bf-eval --json e.bf | jmeta min_len) == 4 && $(bf-eval --json e.bf | jmeta max_len) == 4 ]]
}

@test "data-33 seq --prompt prepends its bytes, takes no targets there, and widens ctx" {
    bf-data seq --task reverse --prompt 'Reverse: ' --n-train 100 --n-val 10 >d.bf
    check_seq d.bf train reverse 3 6 'Reverse: ' >/dev/null
    check_seq d.bf val reverse 3 6 'Reverse: ' >/dev/null
    bf-eval --json d.bf >j.json
    [[ $(jmeta prompt j.json) == 'Reverse: ' ]]
    [[ $(jmeta ctx j.json) -eq $((9 + 13)) ]]
    # without a prompt, the same seed draws the same digit strings
    bf-data seq --task reverse --n-train 100 --n-val 10 >e.bf
    diff <(check_seq d.bf train reverse 3 6 'Reverse: ') <(check_seq e.bf train reverse 3 6)
}

@test "data-36 seq --tasks: each row answers the task its instruction names; every task appears; meta" {
    bf-data seq --tasks copy,reverse,sort --n-train 300 --n-val 30 >m.bf
    for split in train val; do
        for t in copy reverse sort; do
            p=$(perl -e 'print ucfirst($ARGV[0]), ": "' "$t")
            # the rows whose bytes start with this task's instruction, checked as that task
            paste -d '|' <(bf-dump $split.x m.bf) <(bf-dump $split.y m.bf) |
                perl -ne 'my ($x) = split /\|/; print if join("", map { chr } split " ", $x) =~ /^\Q'"$p"'\E/' >rows.txt
            [[ -s rows.txt ]] || [[ $split == val ]] || fail "no $split row of $t"
        done
    done
    # every row starts with one of the three instructions and answers it
    paste -d '|' <(bf-dump train.x m.bf) <(bf-dump train.y m.bf) | perl -ne '
        my ($x, $y) = split /\|/; my @x = split " ", $x; my @y = split " ", $y;
        my $p = $#y; $p-- while $y[$p] == -1;
        my $s = join("", map { chr } @x[0 .. $p]) . chr($y[$p]);
        $s =~ /^(Copy|Reverse|Sort): ([0-9]+)=([0-9]+)\n\z/ or die "row $.: \"$s\"\n";
        my $want = $1 eq "Copy" ? $2 : $1 eq "Reverse" ? scalar reverse($2) : join("", sort split //, $2);
        die "row $.: $1 of $2 is $want, not $3\n" unless $3 eq $want;'
    bf-eval --json m.bf >j.json
    [[ $(jmeta task j.json) == mixture && $(jmeta prompts j.json) == true ]]
    [[ $(jget 'join ",", @{$j->{meta}{tasks}}' j.json) == copy,reverse,sort ]]
}

@test "data-37 seq --tasks --no-prompt: the same rows without their instructions; exclusive options" {
    bf-data seq --tasks copy,reverse --n-train 50 --n-val 5 >a.bf
    bf-data seq --tasks copy,reverse --no-prompt --n-train 50 --n-val 5 >b.bf
    diff <(bf-dump train.x a.bf | perl -pe 's/^(?:67 111 112 121|82 101 118 101 114 115 101) 58 32 //; s/( 0)+$//') \
         <(bf-dump train.x b.bf | perl -pe 's/( 0)+$//')
    [[ $(bf-eval --json b.bf | jget '$j->{meta}{prompts}') == false ]]
    for args in "--task copy --tasks copy,sort" "--tasks copy --prompt x" "--no-prompt" "--tasks copy,bogus"; do
        run3 bf-data seq $args
        assert_usage_error bf-data
    done
}

@test "data-34 seq --n-train and --n-val set the row counts (0 allowed)" {
    bf-data seq --n-train 37 --n-val 11 >d.bf
    [[ $(rows d.bf train.x) -eq 37 && $(rows d.bf val.y) -eq 11 ]]
    bf-data seq --n-train 0 --n-val 3 >e.bf
    [[ $(rows e.bf train.x) -eq 0 && $(rows e.bf val.x) -eq 3 ]]
    bf-data seq >f.bf
    [[ $(rows f.bf train.x) -eq 2000 && $(rows f.bf val.x) -eq 200 ]]
    [[ $(bf-eval --json f.bf | jmeta task) == reverse ]]
}

@test "data-35 seq val rows never repeat an input seen before them (train or val)" {
    # 110 inputs of 1-2 digits: 80 train rows repeat some; 25 val rows must all be new
    bf-data seq --task copy --min-len 1 --max-len 2 --n-train 80 --n-val 25 >d.bf
    check_seq d.bf train copy 1 2 >tr
    check_seq d.bf val copy 1 2 >va
    [[ $(wc -l <va) -eq 25 ]]
    [[ $(sort -u va | wc -l) -eq 25 ]] || fail "val repeats itself: $(sort va | uniq -d | tr '\n' ' ')"
    [[ -z $(comm -12 <(sort -u tr) <(sort -u va)) ]] || fail "val repeats train inputs: $(comm -12 <(sort -u tr) <(sort -u va) | tr '\n' ' ')"
    # train may repeat (the sampling is with replacement): the check above is not vacuous
    [[ $(sort -u tr | wc -l) -lt 80 ]]
}

# ----------------------------------------------------------------- 4x text

# a 1000-byte file of every byte value
mkfile() { perl -e 'print map { chr(($_ * 7 + 3) % 256) } 0 .. 999' >"$1"; }

@test "data-45 sudoku: x the puzzle, y its solution on the blanks, meta; bad sizes and too many holes are usage errors" {
    bf-data sudoku --size 6 --holes 20-22 --n-train 30 --n-val 5 --augment 1 >s.bf
    bf-eval --json s.bf >j.json
    [[ $(jmeta task j.json) == sudoku && $(jmeta vocab j.json) == 7 && $(jmeta ctx j.json) == 36 ]]
    [[ $(jshape train.x j.json) == 60,36 && $(jshape val.y j.json) == 5,36 ]]
    # every row: 20 to 22 blanks, y exactly on the blanks, digits 1-6
    paste -d '|' <(bf-dump train.x s.bf) <(bf-dump train.y s.bf) | perl -ne '
        my ($x, $y) = split /\|/; my @x = split " ", $x; my @y = split " ", $y;
        my $h = grep { $_ == 0 } @x;
        die "row $.: $h holes\n" unless $h >= 20 && $h <= 22;
        for my $i (0 .. $#x) { die "row $.: cell $i\n" unless ($x[$i] == 0) == ($y[$i] >= 1 && $y[$i] <= 6) && ($x[$i] || 1) }'
    for args in "--size 5" "--size 4 --holes 13" "--size 9 --holes 60" "--holes 3-2" "--holes x" "--size 4 --task copy"; do
        run3 bf-data sudoku $args
        assert_usage_error bf-data
    done
}

@test "data-40 text: windows of ctx+1 bytes, y the next byte, train the first bytes, val the last share" {
    mkfile f.bin
    bf-data text --file f.bin --ctx 9 --val-frac 0.2 >d.bf
    bf-eval --json d.bf >j.json
    [[ $(jmeta task j.json) == text && $(jmeta vocab j.json) == 256 && $(jmeta ctx j.json) == 9 ]]
    # 800 train bytes: 80 windows of 10; 200 val bytes: 20 windows
    [[ $(jshape train.x j.json) == 80,9 && $(jshape val.y j.json) == 20,9 ]]
    perl -e 'print map { (($_ * 7 + 3) % 256) . (($_ % 10 == 8) ? "\n" : " ") } grep { $_ % 10 != 9 } 0 .. 799' >want.x
    perl -e 'print map { (($_ * 7 + 3) % 256) . (($_ % 10 == 9) ? "\n" : " ") } grep { $_ % 10 != 0 } 0 .. 799' >want.y
    diff want.x <(bf-dump train.x d.bf)
    diff want.y <(bf-dump train.y d.bf)
    perl -e 'print map { (($_ * 7 + 3) % 256) . (($_ % 10 == 8) ? "\n" : " ") } grep { $_ % 10 != 9 } 800 .. 999' >want.vx
    diff want.vx <(bf-dump val.x d.bf)
}

@test "data-41 text --ctx and --val-frac: defaults 64 and 0.1, 0 leaves val empty, a partial window is dropped" {
    mkfile f.bin
    bf-data text --file f.bin >d.bf
    # 900 train bytes: 13 windows of 65; 100 val bytes: 1
    [[ $(bf-eval --json d.bf | jshape train.x) == 13,64 && $(bf-eval --json d.bf | jshape val.x) == 1,64 ]]
    bf-data text --file f.bin --ctx 99 --val-frac 0 >e.bf
    [[ $(bf-eval --json e.bf | jshape train.x) == 10,99 && $(rows e.bf val.x) -eq 0 ]]
    run3 bf-data text --file f.bin --ctx 200 --val-frac 0.1
    assert_data_error bf-data
}

# -------------------------------------------------------- 5x determinism

@test "data-50 the same seed gives byte-identical streams; the default seed is 1" {
    bf-data modarith --p 11 --seed 5 >a.bf
    bf-data modarith --p 11 --seed 5 >b.bf
    cmp a.bf b.bf
    bf-data seq --n-train 50 --n-val 5 --seed 5 >c.bf
    bf-data seq --n-train 50 --n-val 5 --seed 5 >d.bf
    cmp c.bf d.bf
    # the lineage records the arguments, so compare the tensors
    bf-data seq --n-train 50 --n-val 5 >e.bf
    bf-data seq --n-train 50 --n-val 5 --seed 1 >f.bf
    diff <(bf-tstat e.bf) <(bf-tstat f.bf)
}

@test "data-51 another seed gives another shuffle and other rows" {
    bf-data modarith --p 11 --seed 1 >a.bf
    bf-data modarith --p 11 --seed 2 >b.bf
    [[ $(bf-tstat a.bf | awk '$1 == "train.x" { print $8 }') != $(bf-tstat b.bf | awk '$1 == "train.x" { print $8 }') ]]
    # the same pairs, split differently
    diff <(cat <(check_modarith a.bf train add 11) <(check_modarith a.bf val add 11) | sort) \
        <(cat <(check_modarith b.bf train add 11) <(check_modarith b.bf val add 11) | sort)
    bf-data seq --n-train 50 --n-val 5 --seed 1 >c.bf
    bf-data seq --n-train 50 --n-val 5 --seed 2 >d.bf
    ! diff -q <(bf-dump train.x c.bf) <(bf-dump train.x d.bf) >/dev/null
}

# ----------------------------------------------------------------- 6x output

@test "data-60 -o FILE writes the stream there and nothing on stdout; the lineage names bf-data" {
    run3 bf-data modarith --p 5 -o d.bf
    [[ $status -eq 0 && ! -s $T/out && ! -s $T/err ]]
    bf-data modarith --p 5 >e.bf
    diff <(bf-tstat d.bf) <(bf-tstat e.bf)
    grep -aq bf-data d.bf
    grep -aq -- '--p' d.bf
    [[ -z $(find . -maxdepth 1 -name '.*.tmp*') ]]
}

@test "data-61 a failing run leaves no file and does not clobber an existing one" {
    run3 bf-data text --file "$T/missing.txt" -o d.bf
    assert_data_error bf-data
    [[ ! -e d.bf ]]
    echo precious >d.bf
    run3 bf-data text --file "$T/missing.txt" -o d.bf
    assert_data_error bf-data
    [[ $(<d.bf) == precious ]]
    run3 bf-data modarith --p 1 -o d.bf
    [[ $status -eq 2 && $(<d.bf) == precious ]]
    [[ -z $(find . -maxdepth 1 -name '.*.tmp*') ]]
}

@test "data-62 -o /dev/null stays a character device; -o /dev/full fails with one line" {
    run3 bf-data modarith --p 5 -o /dev/null
    [[ $status -eq 0 && ! -s $T/err ]]
    [[ -c /dev/null ]] || fail "/dev/null is no longer a character device"
    run3 bf-data modarith --p 31 -o /dev/full
    assert_data_error bf-data
    [[ -c /dev/full ]]
    # and on stdout
    local st=0
    bf-data modarith --p 31 >/dev/full 2>"$T/err" || st=$?
    [[ $st -eq 1 ]]
    assert_one_error bf-data
}

@test "data-63 refuses to write a stream to a terminal (exit 2), but -o works there" {
    refuses_terminal bf-data modarith --p 5
    local st=0
    script -qec "$BF_BIN/bf-data modarith --p 5 -o $T/d.bf" /dev/null </dev/null >tty.out 2>&1 || st=$?
    [[ $st -eq 0 && ! -s tty.out ]]
    bf-eval d.bf >/dev/null
}

@test "data-64 a stream through a pipe into bf-eval and bf-init --like" {
    local st=0
    bf-data seq --n-train 20 --n-val 4 | bf-init --like - --d 16 --heads 2 | bf-eval --json >j.json || st=$?
    [[ $st -eq 0 ]]
    [[ $(jmeta vocab j.json) == 256 && $(jmeta ctx j.json) == 13 ]]
}

# ------------------------------------------------------ 7x held-out val rows

# val_in_train FILE: how many val rows have the x of some train row
val_in_train() {
    awk 'NR == FNR { t[$0] = 1; next } ($0 in t) { n++ } END { print n + 0 }' <(bf-dump train.x "$1") <(bf-dump val.x "$1")
}

@test "data-70 no val row's x equals a train row's x, in every data set, with settings that used to clash" {
    # each line: the arguments, then the val rows wanted (- when the data decides)
    local line want
    local -a args
    perl -e 'print "the quick brown fox jumps over the lazy dog\n" x 40, "0123456789 abcdefghijklmnopqrstuvwxyz\n"' >rep.txt
    for line in 'modarith --p 11 --frac 0.5:60' \
        'seq --task copy --min-len 1 --max-len 2 --n-train 80 --n-val 25:25' \
        'seq --tasks copy,reverse,sort --min-len 1 --max-len 2 --n-train 60 --n-val 30:30' \
        'seq --tasks copy,reverse,sort --no-prompt --min-len 1 --max-len 2 --n-train 60 --n-val 30:30' \
        'seq --tasks copy,reverse,sort --no-prompt --n-train 6000 --n-val 300:300' \
        'sudoku --size 4 --holes 12 --n-train 200 --n-val 100 --augment 20:100' \
        'text --file rep.txt --ctx 8 --val-frac 0.2:-'; do
        read -ra args <<<"${line%:*}"
        want=${line##*:}
        bf-data "${args[@]}" >d.bf || fail "bf-data ${line%:*} failed"
        [[ $(val_in_train d.bf) -eq 0 ]] || fail "bf-data ${line%:*}: $(val_in_train d.bf) val rows are train rows"
        [[ $want == - || $(rows d.bf val.x) -eq $want ]] || fail "bf-data ${line%:*}: $(rows d.bf val.x) val rows, want $want"
    done
    # text: 1798 bytes, 360 for val, 40 windows; it keeps those that reach past the repeated lines
    [[ $(rows d.bf val.x) -gt 0 && $(rows d.bf val.x) -lt 40 ]]
    # the seq mixture without instructions: no val row twice either
    bf-data seq --tasks copy,reverse,sort --no-prompt --min-len 1 --max-len 2 --n-train 60 --n-val 30 >m.bf
    [[ -z $(bf-dump val.x m.bf | sort | uniq -d) ]]
}

@test "data-71 val rows that run out are an error: text whose val part repeats the train part, sudoku among many copies" {
    perl -e 'print "abcdefgh\n" x 100' >rep.txt
    run3 bf-data text --file rep.txt --ctx 8 -o d.bf
    assert_data_error bf-data
    [[ $stderr == *rep.txt* && $stderr == *"repeats a train window"* && ! -e d.bf ]]
    run3 bf-data sudoku --size 4 --holes 12 --n-train 1000 --n-val 71 --augment 300 -o d.bf
    assert_data_error bf-data
    [[ $stderr == *"equalled a train row"* && ! -e d.bf ]]
}
