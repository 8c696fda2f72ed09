# Workload for bench/programs.mjs: perl counting words, bigrams and line shapes of text files
# (hashes, strings, regexes, sorts), read ROUNDS times. Output: counts only.
use strict; use warnings;
my $rounds = shift @ARGV;
my (%words, %pairs, %shapes);
for my $round (1 .. $rounds) {
  for my $file (@ARGV) {
    open my $fh, '<', $file or die "$file: $!";
    my $prev = '';
    while (my $line = <$fh>) {
      (my $shape = $line) =~ s/\w+/w/g;
      $shapes{$shape}++;
      for my $w ($line =~ /(\w+)/g) {
        $words{lc $w}++;
        $pairs{"$prev $w"}++;
        $prev = $w;
      }
    }
    close $fh;
  }
}
printf "%d words %d pairs %d shapes\n", scalar(keys %words), scalar(keys %pairs), scalar(keys %shapes);
my @top = (sort { $words{$b} <=> $words{$a} || $a cmp $b } keys %words)[0 .. 9];
print "$_ $words{$_}\n" for @top;
