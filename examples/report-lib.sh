# report-lib.sh — shell helpers the examples' report scripts share (sourced,
# not run): reading bf-eval's JSON and --log files.

# j EXPR: the Perl expression EXPR on the JSON object read from stdin ($j)
j() { perl -MJSON::PP -e 'my $j = decode_json(<STDIN>); print eval $ARGV[0]' "$1"; }
# pct X: the fraction X as a percentage with one decimal ("98.1%")
pct() { awk -v x="$1" 'BEGIN { printf "%.1f%%", 100 * x }'; }
# train_s LOG: a --log file's training seconds (its last line's seconds
# without the time spent evaluating)
train_s() { tail -n 1 "$1" | j 'sprintf "%.1f", $j->{seconds} - ($j->{eval_seconds} // 0)'; }
# steps_of LOG: the last step a --log file recorded
steps_of() { tail -n 1 "$1" | j '$j->{step}'; }
# log_curve LOG CURVE: "step loss" lines for gnuplot from a --log file
log_curve() { perl -MJSON::PP -ne 'my $x = decode_json($_); print "$x->{step} $x->{loss}\n"' "$1" >"$2"; }
