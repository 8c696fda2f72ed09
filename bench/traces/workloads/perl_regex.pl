# Tokenizes perl's own top-level modules: regexes, hashes of arrays, string building, sorting.
use strict; use warnings;
my ($dir) = grep { -d } glob('/usr/share/perl/5.*');
my @files = (sort glob("$dir/*.pm"))[0 .. 2];
my (%where, %count);
for my $file (@files) {
  open(my $fh, '<', $file) or next;
  while (my $line = <$fh>) {
    while ($line =~ /([A-Za-z_]\w{2,})/g) { $count{lc $1}++; push @{ $where{lc $1} }, "$file:$." if $count{lc $1} < 20 }
  }
  close $fh;
}
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 49];
my $report = join("\n", map { sprintf('%-20s %6d %s', $_, $count{$_}, join(',', @{ $where{$_} }[0 .. 2])) } @top);
print STDERR scalar(keys %count), " words, report of ", length($report), " bytes\n";
