// What Timestream's regexp_like(value, pattern) answers, evaluated by java.util.regex:
// a contains-match, Pattern.compile(pattern).matcher(value).find().
//
// Run once per test session: `java tests/java/RegexOracle.java`. Each input line is
// "x<hex UTF-8 pattern> x<hex UTF-8 value> x<hex UTF-8 value>..."; each output line is
// one character per value ('1' match, '0' no match, 'S' stack overflow) or, if the
// pattern does not compile, "E" and Java's message on one line.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

public class RegexOracle {
    static String decode(String token) {
        return new String(HexFormat.of().parseHex(token.substring(1)), StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        String line;
        while ((line = in.readLine()) != null) {
            String[] tokens = line.split(" ");
            StringBuilder answer = new StringBuilder();
            try {
                Pattern pattern = Pattern.compile(decode(tokens[0]));
                for (int i = 1; i < tokens.length; i++) {
                    try {
                        answer.append(pattern.matcher(decode(tokens[i])).find() ? '1' : '0');
                    } catch (StackOverflowError e) {
                        answer.append('S');
                    }
                }
            } catch (PatternSyntaxException e) {
                answer.setLength(0);
                answer.append('E').append(e.getDescription().replace('\n', ' '));
            }
            out.println(answer);
            out.flush();
        }
    }
}
